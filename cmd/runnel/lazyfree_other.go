//go:build !linux

package main

// lazyFree is a Linux tuning (lazyfree_linux.go).
func lazyFree() {}
