//go:build tools

// Package kube pins the Kubernetes control plane that the tests start (kube-apiserver,
// kube-controller-manager, etcd). It is built by scripts/setup.sh; nothing imports it.
package kube

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver/app"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)
