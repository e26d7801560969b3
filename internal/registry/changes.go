package registry

import (
	"context"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WatchSubjects calls changed with the qualified name of every subject
// written from now on (a version registered, soft- or hard-deleted), and
// lost when changes may have been missed because the watch broke and was
// started again, so the caller reads again what it keeps. It returns when
// ctx ends. Calls come from one goroutine, in the order of the writes.
// It is for caches of derived views (the stream catalog's fields and
// tags); reads stay linearizable through the other methods.
func (r *Registry) WatchSubjects(ctx context.Context, changed func(subject string), lost func()) {
	prefix := r.kSubjects()
	first := true
	for ctx.Err() == nil {
		if !first {
			lost()
		}
		first = false
		wch := r.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix())
		for wr := range wch {
			if wr.Err() != nil {
				break
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
