package broker

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-dev/runnel/internal/metadata"
)

// etcdQuotaBytes is the backend quota the alarm is computed against: the
// embedded member's quota, and etcd's default for an external cluster.
func (b *Broker) etcdQuotaBytes() int64 {
	if b.embedded != nil {
		return metadata.EmbeddedQuotaBytes
	}
	return metadata.DefaultQuotaBytes
}

// watchEtcdSize reports etcd's database size, warns well before the quota
// (etcd turns read-only at the quota, DESIGN §10), and defragments the
// embedded member when most of its file is free space. Old revisions are
// compacted by the storage engine at each checkpoint.
func (b *Broker) watchEtcdSize(ctx context.Context) {
	defer b.wg.Done()
	size := prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_etcd_db_bytes", Help: "Size of the etcd backend database file."})
	inUse := prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_etcd_db_in_use_bytes", Help: "Bytes of the etcd backend database in use."})
	quota := prometheus.NewGauge(prometheus.GaugeOpts{Name: "runnel_etcd_quota_bytes", Help: "The etcd backend quota the size is compared with."})
	b.registry.MustRegister(size, inUse, quota)
	quota.Set(float64(b.etcdQuotaBytes()))
	endpoint := ""
	if b.embedded != nil {
		endpoint = b.embedded.ClientURL()
	} else {
		endpoint = b.cfg.Etcd.Endpoints[0]
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := b.cli.Status(sctx, endpoint)
		cancel()
		if err != nil {
			b.log.Warn("etcd status", "err", err)
			continue
		}
		size.Set(float64(st.DbSize))
		inUse.Set(float64(st.DbSizeInUse))
		if st.DbSize > b.etcdQuotaBytes()*8/10 {
			b.log.Error("etcd database is above 80% of its quota; etcd turns read-only at the quota",
				"db_bytes", st.DbSize, "in_use_bytes", st.DbSizeInUse, "quota_bytes", b.etcdQuotaBytes())
		}
		if b.embedded != nil && st.DbSize > 256<<20 && st.DbSize > 2*st.DbSizeInUse {
			dctx, cancel := context.WithTimeout(ctx, time.Minute)
			if err := metadata.Defragment(dctx, b.cli, []string{endpoint}); err != nil {
				b.log.Warn("etcd defragment", "err", err)
			} else {
				b.log.Info("etcd defragmented", "db_bytes_before", st.DbSize, "in_use_bytes", st.DbSizeInUse)
			}
			cancel()
		}
	}
}
