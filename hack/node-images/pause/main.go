// Command pause is the sandbox ("pause") container of the real test node (test/env/real-node.ts): it holds
// the pod's namespaces until it is told to stop, and reaps orphaned children when it is the pod's PID 1.
// A stand-in for registry.k8s.io/pause, which cannot be pulled here; built static and put in a FROM-scratch
// image by the harness.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("nxt-test pause")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
