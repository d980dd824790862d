// Command probe is the test image of the real test node (test/env/real-node.ts). It prints, one `key=value`
// a line, what a test wants to assert about how the container really runs: its uid and gid, whether the root
// filesystem is writable, its effective capabilities, its seccomp mode and its no_new_privs flag. Then it
// sleeps for -sleep (default 0) and exits with -exit (default 0).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	sleep := flag.Duration("sleep", 0, "how long to sleep before exiting")
	code := flag.Int("exit", 0, "exit code")
	msg := flag.String("message", "", "a line to print first")
	flag.Parse()
	if *msg != "" {
		fmt.Println(*msg)
	}
	fmt.Printf("uid=%d\n", os.Getuid())
	fmt.Printf("gid=%d\n", os.Getgid())
	host, _ := os.Hostname()
	fmt.Printf("hostname=%s\n", host)
	fmt.Printf("rootfs=%s\n", rootfs())
	status := procStatus()
	fmt.Printf("capeff=%s\n", status["CapEff"])
	fmt.Printf("capbnd=%s\n", status["CapBnd"])
	fmt.Printf("seccomp=%s\n", status["Seccomp"])
	fmt.Printf("nonewprivs=%s\n", status["NoNewPrivs"])
	if *sleep > 0 {
		time.Sleep(*sleep)
	}
	fmt.Println("done")
	os.Exit(*code)
}

// rootfs reports whether / can be written: "read-only" (EROFS), "writable", or the error.
func rootfs() string {
	f, err := os.CreateTemp("/", ".probe-")
	if err == nil {
		name := f.Name()
		f.Close()
		os.Remove(name)
		return "writable"
	}
	if errors.Is(err, syscall.EROFS) {
		return "read-only"
	}
	return "error:" + err.Error()
}

func procStatus() map[string]string {
	out := map[string]string{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}
