package config

import "fmt"

// DeadLetterConfig is the cluster's rules for share groups' dead-letter
// topics: Kafka's broker configs of KIP-1191.
type DeadLetterConfig struct {
	// TopicPrefix is errors.deadletterqueue.topic.name.prefix: a share
	// group's dead-letter topic name must start with it ("dlq." by
	// default; "" allows any name).
	TopicPrefix string `yaml:"topic-prefix"`
	// AutoCreateTopics is errors.deadletterqueue.auto.create.topics.enable:
	// a missing dead-letter topic is created on the first dead letter;
	// otherwise the dead letters wait until it exists.
	AutoCreateTopics bool `yaml:"auto-create-topics"`
}

// DefaultDeadLetters is the dead-letter section's default.
func DefaultDeadLetters() DeadLetterConfig { return DeadLetterConfig{TopicPrefix: "dlq."} }

// Validate checks the dead-letter keys.
func (d DeadLetterConfig) Validate() error {
	if err := dlqTopicName(d.TopicPrefix); err != nil {
		return fmt.Errorf("config: dead-letters.topic-prefix: %v", err)
	}
	return nil
}
