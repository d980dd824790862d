module github.com/nxtnewday/nxt-rollback-operator/hack/node-images

go 1.26
