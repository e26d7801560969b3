package groups

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Sentinel errors of durable writes.
var (
	// ErrFenced means the shard's owner key changed: this broker no longer
	// owns the shard and must not write.
	ErrFenced = errors.New("groups: shard ownership lost")
	// ErrStore means etcd did not accept a write (unreachable, timeout);
	// the outcome may be unknown.
	ErrStore = errors.New("groups: metadata store write failed")
)

// errorCode maps a durable write error to the Kafka code a client expects.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrFenced):
		return kerr.NotCoordinator.Code
	default:
		return kerr.CoordinatorNotAvailable.Code
	}
}
