// Package access owns access requests, the grants they become, stream
// shares and the governance audit log (DESIGN §7, the "access" part of
// internal/governance).
//
// An access request asks for READ or WRITE on one topic; the product's
// owner (governance.Owners) or an administrator approves or declines it.
// Every state change is a compare-and-swap on the request's one etcd key,
// so two approvers racing on two brokers produce one decision. An
// approval creates exactly the ACLs asked for and records them; revoking
// or expiring the grant removes those ACLs again, and never one that
// existed independently of the grant (a binding several grants share is
// reference-counted under Prefix+"access/acl-holds/"). A share mints a
// SCRAM user limited to reading one topic, optionally quota-limited and
// expiring; its password is answered once and never stored. Every broker
// sweeps expired grants and shares every second; the compare-and-swap
// makes concurrent sweeps safe.
//
// The audit log (Audit) implements governance.Auditor for every part:
// time-ordered events under Prefix+"audit/", trimmed by count and age.
//
// The package reaches the ACLs, SCRAM credentials, quotas, topics and
// product owners only through the small interfaces in service.go, which
// the broker wires. It never reads ACLs to decide a request itself
// (callers are checked through governance.Actor), never stores a
// password, and never deletes an ACL it did not create.
package access
