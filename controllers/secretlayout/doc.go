// Package secretlayout is the one definition of how the key controllers
// write the objects zmqauth owns: the type, labels and annotations (the
// rotation state) of a keypair Secret, the name of a server's allowlist
// ConfigMap, and the code that builds a keypair Secret's data from a
// keygen.KeyPair and parses it back with validation. The files inside those
// objects (public.key, secret.key, previous-*, next-*, server.NS.NAME.key,
// the allowlist's files) are named and described in package filecontract,
// which the sidecar imports too (docs/architecture.md, section 5).
//
// A keypair Secret has type zmqauth.io/curve, label zmqauth.io/managed-by:
// zmqauth, and a controller owner reference to its CurveServer or
// CurveClient.
//
// Its annotations zmqauth.io/key-revision, zmqauth.io/rotated-at,
// zmqauth.io/overlap-until, zmqauth.io/rotation-request and
// zmqauth.io/rotation-reason are the rotation state, so each rotation step is
// one atomic write of the Secret (see State).
//
// Errors from this package name the data key that is wrong and never contain
// a secret key.
package secretlayout
