// Package relay is the sidecar's data path: it terminates one ZMTP
// connection on each side and copies frames between them, both ways.
//
// An Inbound route accepts CURVE connections from the network (the route's
// server mechanism, whose authenticator is the route's allowlist policy) and,
// once a client is authorized, dials the application on localhost with NULL,
// announcing the client's Socket-Type and Identity and the authenticated
// identity as "User-Id", so that a libzmq application reads it per message
// (zmq_msg_gets(msg, "User-Id"), pyzmq frame.get("User-Id")). The remote
// client is then told the application's Socket-Type and Identity in READY.
//
// An Outbound route accepts the application's NULL connection on localhost
// and, once it knows the application's socket type, dials the remote server
// with a CURVE client built from the workload's current keys, and tells the
// application the server's socket type and identity.
//
// Each established session is relayed frame by frame by two goroutines, one
// per direction, so that encryption and decryption run on different cores.
// Writes are flushed only when the source has nothing more buffered, so
// small messages travel in batches; each direction reuses one buffer, so a
// steady stream of frames allocates nothing. SUBSCRIBE and CANCEL commands
// are forwarded as they come and translated to and from the ZMTP 3.0
// subscription-message form when only one side speaks ZMTP 3.1. Heartbeats
// are per hop: each connection follows its own configuration.
//
// Inbound sessions remember the client's long-term public key, so that
// CloseWhere can end the live sessions of a key that left the allowlist.
package relay
