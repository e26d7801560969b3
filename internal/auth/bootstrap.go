package auth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrBootstrapUsers means the bootstrap users file is malformed.
var ErrBootstrapUsers = errors.New("auth: bootstrap users file")

// BootstrapUser is one line of the bootstrap users file.
type BootstrapUser struct {
	Name, Password string
}

// ParseBootstrapUsers reads a bootstrap users file: one "name:password" a
// line (the password is everything after the first colon), blank lines
// and lines starting with '#' ignored, surrounding spaces trimmed. A
// malformed line is an error naming the line, never showing the password.
func ParseBootstrapUsers(path string, data []byte) ([]BootstrapUser, error) {
	var users []BootstrapUser
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, password, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		switch {
		case !ok:
			return nil, fmt.Errorf("%w %s line %d: want name:password", ErrBootstrapUsers, path, n)
		case name == "":
			return nil, fmt.Errorf("%w %s line %d: empty user name", ErrBootstrapUsers, path, n)
		case password == "":
			return nil, fmt.Errorf("%w %s line %d: empty password for %q", ErrBootstrapUsers, path, n, name)
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("%w %s line %d: user %q is already on line %d", ErrBootstrapUsers, path, n, name, prev)
		}
		seen[name] = n
		users = append(users, BootstrapUser{Name: name, Password: password})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBootstrapUsers, path, err)
	}
	return users, nil
}

// Bootstrap creates each user of the bootstrap users file at path that has
// no credential yet, with SCRAM-SHA-256 and SCRAM-SHA-512 credentials of
// iterations (PLAIN checks against them). Users that exist keep theirs, so
// a password changed since is not reset; brokers starting together do
// not overwrite each other. It returns the names created.
func Bootstrap(ctx context.Context, c *Credentials, path string, iterations int) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBootstrapUsers, err)
	}
	users, err := ParseBootstrapUsers(path, data)
	if err != nil {
		return nil, err
	}
	var created []string
	for _, u := range users {
		if c.hasUser(u.Name) {
			continue
		}
		if err := c.setPassword(ctx, u.Name, u.Password, SCRAMMechanisms, iterations, true); err != nil {
			return created, fmt.Errorf("auth: bootstrap user %q: %w", u.Name, err)
		}
		created = append(created, u.Name)
	}
	return created, nil
}
