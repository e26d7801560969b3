// Package faultstore is an objstore.Store decorator for tests: it injects
// errors, latency and crashes in the middle of a Put, by rules that tests add
// and remove while the store is in use (in the spirit of pebble's errorfs).
//
// It exists only to test how other packages survive object store failures;
// production code must never construct one.
package faultstore
