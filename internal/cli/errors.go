package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
)

// topicErr turns a Kafka error about topic into a sentence a person can read.
func topicErr(topic string, err error, brokerMsg string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("topic %q already exists", topic)
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return fmt.Errorf("topic %q does not exist", topic)
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Errorf("not authorized to access topic %q", topic)
	}
	return fmt.Errorf("topic %q: %w", topic, kafkaErr(err, brokerMsg))
}

// groupErr turns a Kafka error about group into a sentence a person can read.
func groupErr(group string, err error, brokerMsg string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.GroupIDNotFound):
		return fmt.Errorf("group %q does not exist", group)
	case errors.Is(err, kerr.NonEmptyGroup):
		return fmt.Errorf("group %q is not empty: stop its consumers first", group)
	case errors.Is(err, kerr.GroupAuthorizationFailed):
		return fmt.Errorf("not authorized to access group %q", group)
	case errors.Is(err, kerr.InvalidGroupID):
		return fmt.Errorf("group id %q is invalid", group)
	}
	return fmt.Errorf("group %q: %w", group, kafkaErr(err, brokerMsg))
}

// kafkaError is a Kafka error code rendered for people, keeping the
// original error reachable through errors.Is/As.
type kafkaError struct {
	err *kerr.Error
	msg string
}

func (e *kafkaError) Error() string {
	desc := strings.TrimSuffix(e.err.Description, ".")
	s := fmt.Sprintf("%s (%s)", desc, e.err.Message)
	if e.msg != "" && e.msg != e.err.Description {
		s += ": " + e.msg
	}
	return s
}

func (e *kafkaError) Unwrap() error { return e.err }

// kafkaErr renders a kerr error as "description (CODE): broker message";
// other errors are returned unchanged.
func kafkaErr(err error, brokerMsg string) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return &kafkaError{err: ke, msg: brokerMsg}
	}
	if brokerMsg != "" {
		return fmt.Errorf("%w: %s", err, brokerMsg)
	}
	return err
}

// friendlyErr adds hints to errors every command can hit: an unreachable
// broker or a cancelled command.
func friendlyErr(brokers string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	var opErr *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &opErr) && opErr.Op == "dial") {
		return fmt.Errorf("cannot reach the brokers at %s (is a broker running? set --brokers or %s): %w",
			brokers, envBrokers, err)
	}
	return err
}

// wrapErrors makes every command below cmd pass its RunE error through
// friendlyErr.
func wrapErrors(cmd *cobra.Command, g *globalOptions) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			return friendlyErr(g.brokers, run(c, args))
		}
	}
	for _, sub := range cmd.Commands() {
		wrapErrors(sub, g)
	}
}
