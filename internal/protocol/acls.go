package protocol

// DescribeAcls (key 29), CreateAcls (key 30) and DeleteAcls (key 31),
// versions 0–3 (v0 knows only LITERAL patterns; flexible from v2).
//
// As Kafka: DescribeAcls needs DESCRIBE on the cluster (top-level
// CLUSTER_AUTHORIZATION_FAILED), CreateAcls and DeleteAcls ALTER on the
// cluster (every result CLUSTER_AUTHORIZATION_FAILED). Without an
// Authorizer, or with one that cannot change ACLs (not an ACLAdmin), the
// APIs answer SECURITY_DISABLED, as a broker with no authorizer does.
//
// Bindings and filters are internal/auth's: a binding must name a concrete
// resource type, a LITERAL or PREFIXED pattern, a non-empty name
// ("kafka-cluster" for the cluster), a principal "Type:name", a host, a
// concrete operation and ALLOW or DENY, otherwise its result is
// INVALID_REQUEST; the others in the request are still created. A filter
// with an UNKNOWN field is INVALID_REQUEST. Filters match as Kafka's do
// (pattern type MATCH selects every binding that applies to the named
// resource). ACLs are stored in etcd and cached on every broker from a
// watch; a creation or deletion is answered once this broker's cache holds
// it, so a describe on the same broker sees it at once and every other
// broker within the watch's delay.
//
// DescribeAcls groups bindings by resource pattern, sorted by type, name
// and pattern type.

import (
	"context"
	"errors"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
)

const securityDisabledMsg = "no authorizer is configured on the broker"

// aclAdmin returns the Authorizer's ACL capability, or nil.
func (s *Server) aclAdmin() ACLAdmin {
	a, _ := s.opts.Authorizer.(ACLAdmin)
	return a
}

// aclCode maps an ACL store error.
func aclCode(rc *reqCtx, err error) (int16, *string) {
	if errors.Is(err, auth.ErrInvalidACL) {
		return kerr.InvalidRequest.Code, strp(err.Error())
	}
	rc.log.Warn("ACL store", "err", err)
	return kerr.UnknownServerError.Code, strp(err.Error())
}

func handleCreateACLs(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.CreateACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	failAll := func(code int16, msg string) (kmsg.Response, error) {
		for range req.Creations {
			r := kmsg.NewCreateACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = code, strp(msg)
			resp.Results = append(resp.Results, r)
		}
		return resp, nil
	}
	if !s.authorizedCluster(rc, kmsg.ACLOperationAlter) {
		return failAll(kerr.ClusterAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Message)
	}
	admin := s.aclAdmin()
	if admin == nil {
		return failAll(kerr.SecurityDisabled.Code, securityDisabledMsg)
	}
	acls := make([]auth.ACL, 0, len(req.Creations))
	for _, c := range req.Creations {
		acls = append(acls, auth.ACL{
			ResourceType: c.ResourceType, ResourceName: c.ResourceName, PatternType: c.ResourcePatternType,
			Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType,
		})
	}
	errs := admin.CreateACLs(ctx, acls)
	for i, a := range acls {
		r := kmsg.NewCreateACLsResponseResult()
		if i < len(errs) && errs[i] != nil {
			r.ErrorCode, r.ErrorMessage = aclCode(rc, errs[i])
		} else if i >= len(errs) {
			r.ErrorCode = kerr.UnknownServerError.Code
		} else {
			rc.log.Info("created ACL", "acl", a.String(), "by", rc.sess.principal.String())
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

func handleDescribeACLs(_ context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if !s.authorizedCluster(rc, kmsg.ACLOperationDescribe) {
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, strp(kerr.ClusterAuthorizationFailed.Message)
		return resp, nil
	}
	admin := s.aclAdmin()
	if admin == nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, strp(securityDisabledMsg)
		return resp, nil
	}
	f := auth.Filter{
		ResourceType: req.ResourceType, ResourceName: req.ResourceName, PatternType: req.ResourcePatternType,
		Principal: req.Principal, Host: req.Host, Operation: req.Operation, Permission: req.PermissionType,
	}
	if err := f.Validate(); err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, strp(err.Error())
		return resp, nil
	}
	resp.Resources = describedResources(admin.DescribeACLs(f))
	return resp, nil
}

// describedResources groups bindings by resource pattern.
func describedResources(acls []auth.ACL) []kmsg.DescribeACLsResponseResource {
	type pattern struct {
		typ  kmsg.ACLResourceType
		name string
		pt   kmsg.ACLResourcePatternType
	}
	byPattern := make(map[pattern][]auth.ACL)
	var order []pattern
	for _, a := range acls {
		p := pattern{a.ResourceType, a.ResourceName, a.PatternType}
		if _, ok := byPattern[p]; !ok {
			order = append(order, p)
		}
		byPattern[p] = append(byPattern[p], a)
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.pt < b.pt
	})
	out := make([]kmsg.DescribeACLsResponseResource, 0, len(order))
	for _, p := range order {
		r := kmsg.NewDescribeACLsResponseResource()
		r.ResourceType, r.ResourceName, r.ResourcePatternType = p.typ, p.name, p.pt
		for _, a := range byPattern[p] {
			e := kmsg.NewDescribeACLsResponseResourceACL()
			e.Principal, e.Host, e.Operation, e.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
			r.ACLs = append(r.ACLs, e)
		}
		out = append(out, r)
	}
	return out
}

func handleDeleteACLs(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.DeleteACLsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	failAll := func(code int16, msg string) (kmsg.Response, error) {
		for range req.Filters {
			r := kmsg.NewDeleteACLsResponseResult()
			r.ErrorCode, r.ErrorMessage = code, strp(msg)
			resp.Results = append(resp.Results, r)
		}
		return resp, nil
	}
	if !s.authorizedCluster(rc, kmsg.ACLOperationAlter) {
		return failAll(kerr.ClusterAuthorizationFailed.Code, kerr.ClusterAuthorizationFailed.Message)
	}
	admin := s.aclAdmin()
	if admin == nil {
		return failAll(kerr.SecurityDisabled.Code, securityDisabledMsg)
	}
	filters := make([]auth.Filter, 0, len(req.Filters))
	invalid := make([]error, len(req.Filters))
	var valid []auth.Filter
	for i, rf := range req.Filters {
		f := auth.Filter{
			ResourceType: rf.ResourceType, ResourceName: rf.ResourceName, PatternType: rf.ResourcePatternType,
			Principal: rf.Principal, Host: rf.Host, Operation: rf.Operation, Permission: rf.PermissionType,
		}
		filters = append(filters, f)
		if invalid[i] = f.Validate(); invalid[i] == nil {
			valid = append(valid, f)
		}
	}
	deleted, errs := admin.DeleteACLs(ctx, valid)
	vi := 0
	for i := range filters {
		r := kmsg.NewDeleteACLsResponseResult()
		if invalid[i] != nil {
			r.ErrorCode, r.ErrorMessage = kerr.InvalidRequest.Code, strp(invalid[i].Error())
			resp.Results = append(resp.Results, r)
			continue
		}
		if vi < len(errs) && errs[vi] != nil {
			r.ErrorCode, r.ErrorMessage = aclCode(rc, errs[vi])
		}
		if vi < len(deleted) {
			for _, a := range deleted[vi] {
				m := kmsg.NewDeleteACLsResponseResultMatchingACL()
				m.ResourceType, m.ResourceName, m.ResourcePatternType = a.ResourceType, a.ResourceName, a.PatternType
				m.Principal, m.Host, m.Operation, m.PermissionType = a.Principal, a.Host, a.Operation, a.Permission
				r.MatchingACLs = append(r.MatchingACLs, m)
				rc.log.Info("deleted ACL", "acl", a.String(), "by", rc.sess.principal.String())
			}
		}
		vi++
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
