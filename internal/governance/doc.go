// Package governance makes topics data products (DESIGN §7): the stream
// catalog (catalog), lineage observed from real traffic and its
// OpenLineage export (lineage), access requests, grants, stream sharing
// and the audit log (access) and AsyncAPI export and import (asyncapi).
// Each lives in its own subpackage and serves its part of the REST API
// under /api/v1 on the HTTP listener; the web portal (internal/portal)
// is built only on that API.
//
// This package holds what they share: the caller of an API request
// (Actor) and what it may do, the API's error shape and JSON helpers, the
// audit contract and the product-ownership contract, and the etcd prefix
// they keep their state under.
//
// It reaches the log, the registry and the ACLs only through interfaces
// its subpackages define; it never imports internal/broker, internal/cli,
// internal/protocol or internal/stream.
package governance
