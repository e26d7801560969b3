// Package lint holds architecture rules as tests: which packages may import
// which. It has no code of its own and must never be imported.
package lint
