package retry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/config"
)

// Headers of the client contract (README, "Retries and dead letters").
const (
	// HeaderAttempt is the attempt number of a retried record (absent on
	// the original: attempt 0).
	HeaderAttempt = "runnel.retry.attempt"
	// HeaderTopic, HeaderPartition and HeaderOffset name the record's
	// origin; HeaderError is why its last attempt failed.
	HeaderTopic     = "runnel.retry.origin.topic"
	HeaderPartition = "runnel.retry.origin.partition"
	HeaderOffset    = "runnel.retry.origin.offset"
	HeaderError     = "runnel.retry.error"
	// HeaderParkedBehind marks a record parked only because an earlier
	// record of its key is parked (ordered mode); its attempt stays 0.
	HeaderParkedBehind = "runnel.retry.parked.behind"
)

// ErrInvalidGroup: the group id cannot name retry topics.
var ErrInvalidGroup = errors.New("retry: the group id cannot be part of a topic name")

// Policy is a consumer group's retry policy.
type Policy struct {
	Group string
	// Delays holds one delay per retry level (level n waits Delays[n-1]).
	Delays []time.Duration
	// Ordered keeps each key's order across retries (errors.retry.ordered).
	Ordered bool
	// DeadLetterTopic receives a record that fails at the last level.
	DeadLetterTopic string
}

// PolicyOf returns group's retry policy from its GROUP config overrides;
// ok is false when the group has none (no errors.retry.delays.ms).
func PolicyOf(group string, overrides map[string]string) (p Policy, ok bool) {
	delays := config.RetryDelays(overrides)
	if len(delays) == 0 {
		return Policy{}, false
	}
	p = Policy{Group: group, Delays: delays, DeadLetterTopic: DeadLetterTopic(group, overrides)}
	p.Ordered = strings.EqualFold(strings.TrimSpace(overrides[config.GroupRetryOrdered]), "true")
	return p, true
}

// DeadLetterTopic is the group's errors.deadletterqueue.topic.name, or
// dlq.<group> when it is unset.
func DeadLetterTopic(group string, overrides map[string]string) string {
	if v := strings.TrimSpace(overrides[config.GroupDLQTopicName]); v != "" {
		return v
	}
	return "dlq." + group
}

// LevelTopic names the retry topic of level n (1-based).
func LevelTopic(group string, n int) string { return "retry." + group + "." + strconv.Itoa(n) }

// ParkedTopic names the compacted topic of the group's parked keys.
func ParkedTopic(group string) string { return "retry." + group + ".parked" }

// CheckGroup reports whether group can name retry topics: the longest name
// built from it must be a legal topic name.
func CheckGroup(group string) error {
	name := ParkedTopic(group)
	if group == "" || len(name) > 249 {
		return fmt.Errorf("%w: %q", ErrInvalidGroup, group)
	}
	for _, c := range group {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q (only letters, digits, '.', '_' and '-')", ErrInvalidGroup, group)
		}
	}
	return nil
}

// Touches reports whether a change of the named GROUP configs may change
// a retry policy's topics.
func Touches(names []string) bool {
	for _, n := range names {
		switch n {
		case config.GroupRetryDelays, config.GroupRetryOrdered, config.GroupDLQTopicName:
			return true
		}
	}
	return false
}
