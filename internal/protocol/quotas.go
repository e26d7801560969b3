package protocol

// DescribeClientQuotas (key 48) v0–1, AlterClientQuotas (key 49) v0–1
// (KIP-546).
//
// Entities are user, client-id or both, each a name or the default (a null
// name); quotas are producer_byte_rate, consumer_byte_rate,
// request_percentage and controller_mutation_rate (internal/auth stores
// them in etcd; every broker applies a change within a second).
//
// DescribeClientQuotas matches each filter component EXACT (a name, or the
// default when the name is null), DEFAULT or ANY; strict leaves out
// entities with parts the filter does not name. A bad filter answers the
// whole request with Kafka's code: INVALID_REQUEST for an empty or repeated
// entity type, an unknown match type or ip combined with user/client-id,
// UNSUPPORTED_VERSION for an unknown entity type. An ip component is valid
// and matches nothing: connection_creation_rate is not served.
//
// AlterClientQuotas applies each entry to its entity atomically and answers
// per entry: INVALID_REQUEST for an empty entity, a repeated or unknown
// entity type, an empty name, an ip entity, an unknown quota key, a value
// that is not greater than zero (or fractional, for the byte rates), a key
// named twice, or an entity named twice in the request. Removing a quota
// that is not set succeeds. validate_only checks without writing.
//
// Authorization as Kafka's: DescribeClientQuotas needs DESCRIBE_CONFIGS on
// the cluster (else the whole response is CLUSTER_AUTHORIZATION_FAILED),
// AlterClientQuotas ALTER_CONFIGS on the cluster (else every entry is).
// Both are served only with Options.Quotas.

import (
	"context"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

// quotaErrorMessage is err's text without the sentinel's prefix, so
// clients read Kafka's own message ("Quota producer_byte_rate must be
// greater than 0").
func quotaErrorMessage(err error) *string {
	msg := err.Error()
	for _, s := range []error{auth.ErrInvalidQuota, auth.ErrUnsupportedQuotaEntity} {
		msg = strings.TrimPrefix(msg, s.Error()+": ")
	}
	return &msg
}

func handleDescribeClientQuotas(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeClientQuotasRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	if !s.authorizedCluster(rc, kmsg.ACLOperationDescribeConfigs) {
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, strp(kerr.ClusterAuthorizationFailed.Description)
		return resp, nil
	}
	f := auth.QuotaFilter{Strict: req.Strict}
	for _, c := range req.Components {
		f.Components = append(f.Components, auth.QuotaFilterComponent{Type: c.EntityType, Match: auth.QuotaMatch(c.MatchType), Name: c.Match})
	}
	entries, err := s.opts.Quotas.Describe(ctx, f)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(rc.log, err), quotaErrorMessage(err)
		return resp, nil
	}
	for _, e := range entries {
		re := kmsg.NewDescribeClientQuotasResponseEntry()
		for _, c := range e.Entity.Components() {
			ent := kmsg.NewDescribeClientQuotasResponseEntryEntity()
			ent.Type, ent.Name = c.Type, c.Name
			re.Entity = append(re.Entity, ent)
		}
		keys := make([]string, 0, len(e.Values))
		for k := range e.Values {
			keys = append(keys, string(k))
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, e.Values[auth.QuotaKey(k)]
			re.Values = append(re.Values, v)
		}
		resp.Entries = append(resp.Entries, re)
	}
	return resp, nil
}

func handleAlterClientQuotas(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.AlterClientQuotasRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	alts := make([]auth.QuotaAlteration, len(req.Entries))
	for i, e := range req.Entries {
		for _, c := range e.Entity {
			alts[i].Entity = append(alts[i].Entity, auth.QuotaComponent{Type: c.Type, Name: c.Name})
		}
		for _, op := range e.Ops {
			alts[i].Ops = append(alts[i].Ops, auth.QuotaOp{Key: op.Key, Value: op.Value, Remove: op.Remove})
		}
	}
	var errs []error
	var storeErr error
	switch {
	case !s.authorizedCluster(rc, kmsg.ACLOperationAlterConfigs):
		storeErr = errClusterAuthorization
	default:
		errs, storeErr = s.opts.Quotas.Alter(ctx, alts, req.ValidateOnly)
	}
	for i, e := range req.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		for _, c := range e.Entity {
			ent := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ent.Type, ent.Name = c.Type, c.Name
			re.Entity = append(re.Entity, ent)
		}
		err := storeErr
		if err == nil {
			err = errs[i]
		}
		if err != nil {
			re.ErrorCode, re.ErrorMessage = errorCode(rc.log, err), quotaErrorMessage(err)
		} else if !req.ValidateOnly {
			ent, _ := auth.ParseQuotaEntity(alts[i].Entity)
			rc.log.Info("altered client quotas", "entity", ent.String())
		}
		resp.Entries = append(resp.Entries, re)
	}
	return resp, nil
}
