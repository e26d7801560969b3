package config

import (
	"strings"
	"testing"
)

func TestDeadLetterKeys(t *testing.T) {
	if d := Default().DeadLetters; d.TopicPrefix != "dlq." || d.AutoCreateTopics {
		t.Fatalf("default dead-letters = %+v, want prefix dlq. and no auto create", d)
	}
	c, err := Parse([]byte("dead-letters:\n  topic-prefix: \"\"\n  auto-create-topics: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.DeadLetters.TopicPrefix != "" || !c.DeadLetters.AutoCreateTopics || c.Validate() != nil {
		t.Fatalf("dead-letters = %+v, %v", c.DeadLetters, c.Validate())
	}
	c.DeadLetters.TopicPrefix = "dead letters/"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "dead-letters.topic-prefix") {
		t.Fatalf("bad prefix: %v", err)
	}
	c = Default()
	c.DeadLetters.AutoCreateTopics = true
	got := map[string]string{}
	for _, d := range BrokerDefs(c) {
		got[d.Name] = d.Default
	}
	if got["errors.deadletterqueue.topic.name.prefix"] != "dlq." || got["errors.deadletterqueue.auto.create.topics.enable"] != "true" {
		t.Fatalf("broker configs: prefix %q, auto create %q", got["errors.deadletterqueue.topic.name.prefix"], got["errors.deadletterqueue.auto.create.topics.enable"])
	}
}
