package protocol

// DescribeUserScramCredentials (key 50) and AlterUserScramCredentials
// (key 51), version 0 of each (KIP-554).
//
// Both are served only when Options.SCRAM is set. Describe answers, per
// user, the mechanisms and iteration counts of its credentials, never a
// salt or key; a null or empty user list means every user; a user named
// twice is DUPLICATE_RESOURCE and an unknown one RESOURCE_NOT_FOUND.
// Alter follows KRaft's ScramControlManager: a user may appear once across
// deletions and upsertions (a second appearance makes the user's result
// DUPLICATE_RESOURCE and drops its changes, so kafka-configs and the CLI
// send one request per mechanism); an empty name or an iteration count
// outside 4096..16384 is UNACCEPTABLE_CREDENTIAL, a mechanism other than
// SCRAM-SHA-256 (1) or SCRAM-SHA-512 (2) UNSUPPORTED_SASL_MECHANISM, and
// deleting a credential that does not exist RESOURCE_NOT_FOUND. The
// client sends the salted password; the store keeps only what SCRAM needs
// to verify it. Results come in the order users first appear.
//
// Authorization is Kafka's: DESCRIBE (key 50) and ALTER (key 51) on the
// CLUSTER resource; a denied describe answers CLUSTER_AUTHORIZATION_FAILED
// for the whole request, a denied alter for every user. The marked
// authorization points are where the ACL checks go; without an authorizer
// every principal may do both. Delegation-token credentials do not exist.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/auth"
	"github.com/runnel-dev/runnel/internal/config"
)

// SCRAMCredentials is the SCRAM credential store the two APIs manage
// (auth.Credentials). Writes are visible to the writer's Describe when
// they return.
type SCRAMCredentials interface {
	// Describe lists the credentials of users (every user when users is
	// nil), sorted by user; users without a credential are left out.
	Describe(users []string) []auth.UserCredentials
	// Upsert stores user's credential for mechanism from a salt and
	// salted password. Bad input wraps auth.ErrUnacceptableCredential or
	// auth.ErrUnsupportedMechanism.
	Upsert(ctx context.Context, user, mechanism string, iterations int, salt, saltedPassword []byte) error
	// Delete removes user's credential for mechanism; the error wraps
	// auth.ErrCredentialNotFound when there is none.
	Delete(ctx context.Context, user, mechanism string) error
}

// scramMechanisms are Kafka's wire numbers of the SCRAM mechanisms
// (0 is UNKNOWN).
var scramMechanisms = map[int8]string{1: config.MechanismSCRAMSHA256, 2: config.MechanismSCRAMSHA512}

func scramMechanismNumber(name string) int8 {
	for n, m := range scramMechanisms {
		if m == name {
			return n
		}
	}
	return 0
}

// errSCRAMAlteredTwice is Kafka's message for a user changed twice in one
// request.
var errSCRAMAlteredTwice = errors.New("A user credential cannot be altered twice in the same request")

func handleDescribeUserSCRAMCredentials(_ context.Context, s *Server, rc *reqCtx, req *kmsg.DescribeUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !s.authorizedCluster(rc, kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Message)
		return resp, nil
	}
	if len(req.Users) == 0 {
		for _, uc := range s.opts.SCRAM.Describe(nil) {
			resp.Results = append(resp.Results, describedSCRAMUser(uc))
		}
		return resp, nil
	}
	var (
		order []string
		count = map[string]int{}
	)
	for _, u := range req.Users {
		if count[u.Name] == 0 {
			order = append(order, u.Name)
		}
		count[u.Name]++
	}
	found := map[string]auth.UserCredentials{}
	for _, uc := range s.opts.SCRAM.Describe(order) {
		found[uc.User] = uc
	}
	for _, name := range order {
		uc, ok := found[name]
		switch {
		case count[name] > 1:
			r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			r.User, r.ErrorCode = name, kerr.DuplicateResource.Code
			r.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request: " + name)
			resp.Results = append(resp.Results, r)
		case !ok:
			r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			r.User, r.ErrorCode = name, kerr.ResourceNotFound.Code
			r.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist: " + name)
			resp.Results = append(resp.Results, r)
		default:
			resp.Results = append(resp.Results, describedSCRAMUser(uc))
		}
	}
	return resp, nil
}

func describedSCRAMUser(uc auth.UserCredentials) kmsg.DescribeUserSCRAMCredentialsResponseResult {
	r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
	r.User = uc.User
	for _, m := range uc.Mechanisms {
		ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
		ci.Mechanism, ci.Iterations = scramMechanismNumber(m.Mechanism), int32(m.Iterations)
		r.CredentialInfos = append(r.CredentialInfos, ci)
	}
	return r
}

// scramChange is one accepted alteration of a user's credentials.
type scramChange struct {
	mechanism    string
	delete       bool
	iterations   int
	salt, salted []byte
}

// scramVerdict is where a user stands while a request is planned.
type scramVerdict struct {
	change *scramChange // the user's one accepted change
	err    error        // its error, once it has one
}

// planSCRAMAlterations applies Kafka's rules to a request without changing
// the store: each user keeps its first error (deleting a credential that
// exists() denies is one); a user seen again while its earlier change is
// accepted becomes DUPLICATE_RESOURCE. It returns the users in first-seen
// order and their verdicts.
func planSCRAMAlterations(req *kmsg.AlterUserSCRAMCredentialsRequest, exists func(user, mech string) bool) ([]string, map[string]*scramVerdict) {
	var order []string
	verdicts := map[string]*scramVerdict{}
	consider := func(name string, change *scramChange, valid func() error) {
		v := verdicts[name]
		if v == nil {
			v = &scramVerdict{}
			verdicts[name] = v
			order = append(order, name)
		}
		switch {
		case v.err != nil:
		case v.change != nil:
			v.change, v.err = nil, errSCRAMAlteredTwice
		default:
			if v.err = valid(); v.err == nil {
				v.change = change
			}
		}
	}
	for _, d := range req.Deletions {
		mech := scramMechanisms[d.Mechanism]
		consider(d.Name, &scramChange{mechanism: mech, delete: true}, func() error {
			if err := auth.ValidSCRAMUser(d.Name, mechOrUnknown(mech, d.Mechanism)); err != nil {
				return err
			}
			if !exists(d.Name, mech) {
				return fmt.Errorf("%w: attempt to delete a user credential that does not exist", auth.ErrCredentialNotFound)
			}
			return nil
		})
	}
	for _, u := range req.Upsertions {
		mech := scramMechanisms[u.Mechanism]
		consider(u.Name, &scramChange{mechanism: mech, iterations: int(u.Iterations), salt: u.Salt, salted: u.SaltedPassword}, func() error {
			if err := auth.ValidSCRAMUser(u.Name, mechOrUnknown(mech, u.Mechanism)); err != nil {
				return err
			}
			return auth.ValidSCRAMIterations(int(u.Iterations))
		})
	}
	return order, verdicts
}

// mechOrUnknown names an unknown wire mechanism for the error message.
func mechOrUnknown(mech string, n int8) string {
	if mech == "" {
		return fmt.Sprintf("mechanism %d", n)
	}
	return mech
}

func handleAlterUserSCRAMCredentials(ctx context.Context, s *Server, rc *reqCtx, req *kmsg.AlterUserSCRAMCredentialsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	order, verdicts := planSCRAMAlterations(req, func(user, mech string) bool {
		for _, uc := range s.opts.SCRAM.Describe([]string{user}) {
			for _, m := range uc.Mechanisms {
				if m.Mechanism == mech {
					return true
				}
			}
		}
		return false
	})
	allowed := s.authorizedCluster(rc, kmsg.ACLOperationAlter)
	for _, name := range order {
		v := verdicts[name]
		if !allowed {
			// Refused before any change applies, every user alike.
			v.change, v.err = nil, errClusterAuthorization
		}
		if c := v.change; c != nil {
			if c.delete {
				v.err = s.opts.SCRAM.Delete(ctx, name, c.mechanism)
			} else {
				v.err = s.opts.SCRAM.Upsert(ctx, name, c.mechanism, c.iterations, c.salt, c.salted)
			}
		}
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = name
		if v.err != nil {
			r.ErrorCode, r.ErrorMessage = errorCode(s.log, v.err), kmsg.StringPtr(v.err.Error())
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
