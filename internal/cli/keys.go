package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runnel-dev/runnel/internal/config"
	"github.com/runnel-dev/runnel/internal/objstore"
)

func newKeysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the keys that encrypt objects at rest",
		Long: `Manage the key-encryption keys (encryption.keys) that wrap the data key of
every object the brokers write. The first key wraps new data keys, every key
listed unwraps. A broker refuses to start while the store holds objects under
a key it does not have, so rotate in three rolling steps:

  1. add the new key last ([old, new]) on every broker: it only unwraps;
  2. put it first ([new, old]) on every broker: it wraps from now on;
  3. run "runnel keys rewrap", then drop the old key.

A key file holds 32 raw bytes or their base64 ("openssl rand -base64 32").`,
		Example: `  # after putting kek-2027.key first in encryption.keys and restarting every broker
  runnel keys rewrap --config runnel.yaml`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newKeysRewrapCommand(), newKeysIDCommand())
	return cmd
}

func newKeysIDCommand() *cobra.Command {
	var keyURLs []string
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print the key id of each key, the id objects and error messages name",
		Long: `Load each key-encryption key and print its id: the id the header of every
object it wraps carries, and that start-up errors and "runnel keys rewrap"
name. A file key's id comes from its material (it stays the same wherever the
file lives); a key service key's id from its URL without the query.`,
		Example: `  runnel keys id --key file:///etc/runnel/kek-2026.key --key file:///etc/runnel/kek-2027.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(keyURLs) == 0 {
				return fmt.Errorf("no key: give --key")
			}
			for _, u := range keyURLs {
				keys, err := objstore.LoadKeys(cmd.Context(), []string{u})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", keys.Newest(), keys.Name(keys.Newest()))
				_ = keys.Close()
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keyURLs, "key", nil, "key-encryption key URL, repeatable")
	return cmd
}

func newKeysRewrapCommand() *cobra.Command {
	var (
		cfgPath, storeURL, dataDir string
		keyURLs                    []string
		dryRun, encryptPlaintext   bool
	)
	cmd := &cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap every object's data key with the newest key",
		Long: `Re-wrap every object's data key with the newest key: list every object of the
store and, for each one wrapped by an older key, rewrite its header with the
data key wrapped by the newest key (the encrypted data is written back as it
was). When no object is left under an older key, that key's check object is
removed and the key may leave encryption.keys; the brokers refuse to start
while the store still holds objects under a key they do not have.

The store and keys come from --config (object-store or data-dir, and
encryption.keys) or from --object-store and --key (repeatable, newest first),
which override the file. Run it once every broker has the new key first: a
broker still wrapping with an old key keeps writing objects that need it.
Objects the brokers delete during the pass are skipped; one deleted between
being read and written back is written back, unreferenced, and collected
again by the brokers' orphan collection (intake/, topics/) or the next
checkpoint (checkpoints/).

--encrypt-plaintext also encrypts objects written before encryption was
turned on; use it only once every broker runs with encryption on.`,
		Example: `  # what would change, writing nothing
  runnel keys rewrap --config runnel.yaml --dry-run

  # an S3 store, keys given on the command line (newest first)
  runnel keys rewrap --object-store 's3://bucket?region=eu-west-1' \
      --key file:///etc/runnel/kek-2027.key --key file:///etc/runnel/kek-2026.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config.Default()
			if cfgPath != "" {
				var err error
				if cfg, err = config.Load(cfgPath); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("data-dir") {
				cfg.DataDir = dataDir
			}
			if cmd.Flags().Changed("object-store") {
				cfg.ObjectStore = storeURL
			}
			if cmd.Flags().Changed("key") {
				cfg.Encryption.Keys = keyURLs
			}
			if len(cfg.Encryption.Keys) == 0 {
				return fmt.Errorf("no key: set encryption.keys in --config or give --key (newest first)")
			}
			ctx := cmd.Context()
			url := cfg.ObjectStoreURL()
			inner, err := objstore.Open(ctx, url)
			if err != nil {
				return err
			}
			keys, err := objstore.LoadKeys(ctx, cfg.Encryption.Keys)
			if err != nil {
				_ = inner.Close()
				return err
			}
			store, err := objstore.NewEncryptedStore(ctx, inner, keys, objstore.EncryptOptions{ReadOnly: dryRun})
			if err != nil {
				_ = inner.Close()
				_ = keys.Close()
				return err
			}
			defer store.Close()
			rep, err := store.Rewrap(ctx, objstore.RewrapOptions{DryRun: dryRun, EncryptPlaintext: encryptPlaintext})
			printRewrap(cmd.OutOrStdout(), url, keys, rep, dryRun, encryptPlaintext)
			if err != nil {
				return err
			}
			if len(rep.Unconfigured) > 0 {
				return fmt.Errorf("%d object(s) are wrapped by keys that are not configured (%s): add those keys and run again",
					sumCounts(rep.Unconfigured), joinKeyIDs(mapKeys(rep.Unconfigured)))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfgPath, "config", "c", "", "broker YAML config file: its object store and encryption.keys")
	f.StringVar(&dataDir, "data-dir", "", "data directory whose objects/ is the store (when no object store is set)")
	f.StringVar(&storeURL, "object-store", "", "object store URL (overrides the config file)")
	f.StringArrayVar(&keyURLs, "key", nil, "key-encryption key URL, newest first, repeatable (overrides encryption.keys)")
	f.BoolVar(&dryRun, "dry-run", false, "count what would change and write nothing")
	f.BoolVar(&encryptPlaintext, "encrypt-plaintext", false, "also encrypt objects stored without encryption")
	return cmd
}

func printRewrap(w io.Writer, url string, keys *objstore.Keyring, rep objstore.RewrapReport, dryRun, encryptPlaintext bool) {
	would := ""
	if dryRun {
		would = " (dry run: nothing written)"
	}
	fmt.Fprintf(w, "object store %s%s\n", url, would)
	for i, id := range keys.IDs() {
		role := "unwraps"
		if i == 0 {
			role = "newest, wraps"
		}
		fmt.Fprintf(w, "key %s  %s  (%s)\n", id, keys.Name(id), role)
	}
	verb := func(done, todo string) string {
		if dryRun {
			return todo
		}
		return done
	}
	fmt.Fprintf(w, "objects listed:           %d\n", rep.Objects)
	fmt.Fprintf(w, "under the newest key:     %d\n", rep.Current)
	fmt.Fprintf(w, "%-26s%d\n", verb("re-wrapped:", "to re-wrap:"), rep.Rewrapped)
	if encryptPlaintext {
		fmt.Fprintf(w, "%-26s%d\n", verb("plaintext encrypted:", "plaintext to encrypt:"), rep.Encrypted)
	} else {
		fmt.Fprintf(w, "plaintext (left as is):   %d\n", rep.Plaintext)
	}
	fmt.Fprintf(w, "vanished (skipped):       %d\n", rep.Vanished)
	for _, id := range mapKeys(rep.Unconfigured) {
		fmt.Fprintf(w, "under unconfigured key %s: %d\n", id, rep.Unconfigured[id])
	}
	if len(rep.Retired) > 0 {
		fmt.Fprintf(w, "no object left under %s: removed from the key checks; may leave encryption.keys\n", joinKeyIDs(rep.Retired))
	}
}

func mapKeys(m map[objstore.KeyID]int) []objstore.KeyID {
	ids := make([]objstore.KeyID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b objstore.KeyID) int { return strings.Compare(a.String(), b.String()) })
	return ids
}

func sumCounts(m map[objstore.KeyID]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

func joinKeyIDs(ids []objstore.KeyID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}
