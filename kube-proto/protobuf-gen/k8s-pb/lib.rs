//! Empty: this package only pins the `k8s-pb` sources that `kube-proto/protobuf-gen` reads.
