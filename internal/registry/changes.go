package registry

import (
	"context"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WatchSubjects calls changed with the qualified name of every subject
// written (a version registered, soft- or hard-deleted) until ctx ends,
// and resync each time its watch is in place: first once it starts, then
// whenever it broke and was started again. A caller that re-reads what
// it keeps on resync misses no change. Calls come from one goroutine, in
// the order of the writes; it returns when ctx ends. It is for caches of
// views derived from schemas (the stream catalog's fields and tags);
// reads stay linearizable through the other methods.
func (r *Registry) WatchSubjects(ctx context.Context, changed func(subject string), resync func()) {
	prefix := r.kSubjects()
	for ctx.Err() == nil {
		wch := r.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			if wr.Created {
				resync()
			}
			for _, ev := range wr.Events {
				q, err := url.PathUnescape(strings.TrimPrefix(string(ev.Kv.Key), prefix))
				if err != nil {
					continue
				}
				changed(q)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
