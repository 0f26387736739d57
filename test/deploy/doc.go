// Package deploy tests what ships: the Dockerfile (built here the way the
// Dockerfile builds, since no docker engine exists on these machines), the
// kustomize manifests under config/ (rendered and applied to a real API
// server) and `zmqauth check` against them.
package deploy
