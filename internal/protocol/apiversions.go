package protocol

// ApiVersions (key 18), versions 0–4.
//
// Advertises exactly the dispatch table in apis.go. A request for a version
// we do not serve is answered at v0 with UNSUPPORTED_VERSION and the ranges
// (KIP-511), so the client can retry with a version we know; its response
// header is always v0 (handled by internal/wire). v3+ client software
// name/version are validated as Kafka does (INVALID_REQUEST when malformed).
// v3+ advertise the transaction.version feature (supported 0–2, finalized
// at 2), which tells KIP-890 clients to use Transactions V2 (txn.go).

import (
	"context"
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// softwareRe is Kafka's pattern for ClientSoftwareName/Version.
var softwareRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func handleApiVersions(_ context.Context, s *Server, rc *reqCtx, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = s.advertised()
	if req.Version >= 3 {
		sf := kmsg.NewApiVersionsResponseSupportedFeature()
		sf.Name, sf.MinVersion, sf.MaxVersion = "transaction.version", 0, transactionVersion
		resp.SupportedFeatures = append(resp.SupportedFeatures, sf)
		ff := kmsg.NewApiVersionsResponseFinalizedFeature()
		ff.Name, ff.MinVersionLevel, ff.MaxVersionLevel = "transaction.version", transactionVersion, transactionVersion
		resp.FinalizedFeatures = append(resp.FinalizedFeatures, ff)
		resp.FinalizedFeaturesEpoch = 1
	}
	if req.Version >= 3 && (!softwareRe.MatchString(req.ClientSoftwareName) || !softwareRe.MatchString(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
	} else if req.Version >= 3 {
		rc.sess.software = s.metrics.clientSoftware(rc.sess.software,
			softwareKey{rc.sess.listener.Name, req.ClientSoftwareName, req.ClientSoftwareVersion})
		rc.sess.softwareName, rc.sess.softwareVersion = req.ClientSoftwareName, req.ClientSoftwareVersion
	}
	return resp, nil
}

// unsupportedApiVersions is the KIP-511 answer to an unknown version: only
// ApiVersions' own range, as Kafka, so the client retries at a version we
// serve and sends its software name and version (KIP-714 matches on them).
func (s *Server) unsupportedApiVersions() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	for _, k := range s.advertised() {
		if k.ApiKey == kmsg.ApiVersions.Int16() {
			resp.ApiKeys = append(resp.ApiKeys, k)
		}
	}
	return resp
}
