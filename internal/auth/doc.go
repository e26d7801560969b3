// Package auth owns who a client is and what it may do: the listeners'
// TLS configuration (with certificate reloading), SASL mechanisms (PLAIN,
// SCRAM-SHA-256/512, OAUTHBEARER) and the SCRAM credential store, the
// principals derived from them, the ACL authorizer and its store, and
// client quotas. The Kafka front end (internal/protocol) and the HTTP
// servers call it; it imports no handler and never touches the log.
//
// Everything it persists (credentials, ACLs, quotas) lives in etcd under
// one prefix and is cached in memory from a watch, so a change made on one
// broker takes effect on every broker within a second. Passwords are never
// stored: only salted SCRAM credentials are.
package auth
