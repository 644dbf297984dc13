// Command probe is the kit's test helper in a FROM scratch container.
//
//	probe NAME…                 prints the named environment variables as
//	                            NAME=<hex of value>, one per line, or NAME!unset:
//	                            exactly what reached the container's environment.
//	probe load HOST PORT PATH   GETs http://<a task of HOST>:PORT/PATH ten times a
//	                            second (resolving HOST each time, e.g. tasks.web on a
//	                            swarm overlay network) until SIGTERM or 3000
//	                            requests, then prints "ok=N failed=N" and one line
//	                            per answer body and per error with its count (and
//	                            "first answer: BODY" as each new answer comes).
//	probe proxy PORT HOST APPPORT
//	                            a plain reverse proxy on :PORT: each request goes to
//	                            one address of HOST, resolved for that request
//	                            (round robin), at APPPORT — no retries, no
//	                            keep-alive, no health checks, as a minimal
//	                            nginx-style setup behaves. An upstream error is a 502.
//	                            HOST * takes the request's Host header as HOST:
//	                            one proxy for several services, by name.
//	probe call DIR VAR…          for each variable VAR that is set and not empty,
//	                            POSTs to the URL it holds (a webhook) with the
//	                            container's DEPLOYKIT_COPY in the body, prints
//	                            "VAR: <status or error>", writes the same lines
//	                            to DIR/calls (a volume), then waits for SIGTERM.
//	probe record PORT           answers 200 to every request on :PORT and
//	                            prints "<path> <body>" of each: a webhook's
//	                            receiving end.
//	probe registry PORT USER PASSWORD
//	                            an OCI registry (go-containerregistry's, in
//	                            memory) on :PORT that asks for basic auth: the
//	                            registry of the test swarm (testenv.Cluster).
package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/org/deploy-kit/internal/testenv/registryauth"
)

func main() {
	if len(os.Args) == 5 && os.Args[1] == "load" {
		load(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	if len(os.Args) == 5 && os.Args[1] == "proxy" {
		proxy(os.Args[2], os.Args[3], os.Args[4])
		return
	}
	if len(os.Args) >= 3 && os.Args[1] == "call" {
		call(os.Args[2], os.Args[3:])
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "record" {
		record(os.Args[2])
		return
	}
	if len(os.Args) == 5 && os.Args[1] == "registry" {
		h := registryauth.BasicAuth(registry.New(registry.Logger(log.New(io.Discard, "", 0))), os.Args[3], os.Args[4])
		srv := &http.Server{Addr: ":" + os.Args[2], Handler: h, ReadHeaderTimeout: 10 * time.Second}
		fmt.Fprintln(os.Stderr, srv.ListenAndServe())
		os.Exit(1)
	}
	for _, name := range os.Args[1:] {
		v, ok := os.LookupEnv(name)
		if !ok {
			fmt.Printf("%s!unset\n", name)
			continue
		}
		fmt.Printf("%s=%s\n", name, hex.EncodeToString([]byte(v)))
	}
}

func call(dir string, vars []string) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	client := &http.Client{Timeout: 3 * time.Second}
	var lines []string
	for _, v := range vars {
		url := os.Getenv(v)
		if url == "" {
			lines = append(lines, v+": not set")
			continue
		}
		resp, err := client.Post(url, "text/plain", strings.NewReader("copy="+os.Getenv("DEPLOYKIT_COPY")))
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s: %v", v, err))
			continue
		}
		resp.Body.Close()
		lines = append(lines, fmt.Sprintf("%s: %d", v, resp.StatusCode))
	}
	text := strings.Join(lines, "\n") + "\n"
	fmt.Print(text)
	if f, err := os.OpenFile(dir+"/calls", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		_, _ = f.WriteString("copy=" + os.Getenv("DEPLOYKIT_COPY") + "\n" + text)
		f.Close()
	}
	<-stop
}

func record(port string) {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1024))
		fmt.Printf("%s %s\n", r.URL.Path, body)
	})
	srv := &http.Server{Addr: ":" + port, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(os.Stderr, srv.ListenAndServe())
	os.Exit(1)
}

func load(host, port, path string) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	seen := map[string]int{}
	ok, failed := 0, 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	fmt.Println("started")
	for i := 0; i < 3000; i++ {
		select {
		case <-stop:
			i = 3000
			continue
		case <-tick.C:
		}
		answer, err := get(client, host, port, path, i)
		if err != nil {
			failed++
			seen["error: "+err.Error()]++
			continue
		}
		ok++
		if seen[answer] == 0 {
			fmt.Printf("first answer: %s\n", answer)
		}
		seen[answer]++
	}
	fmt.Printf("ok=%d failed=%d\n", ok, failed)
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%d %s\n", seen[k], k)
	}
}

func get(client *http.Client, host, port, path string, i int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return "", err
	}
	sort.Strings(addrs)
	url := "http://" + net.JoinHostPort(addrs[i%len(addrs)], port) + path
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return strings.TrimSpace(string(body)), nil
}

func proxy(port, host, appPort string) {
	var next atomic.Uint64
	transport := &http.Transport{DisableKeepAlives: true}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := host
		if host == "*" {
			host = r.Host
			if h, _, err := net.SplitHostPort(r.Host); err == nil {
				host = h
			}
		}
		addrs, err := net.DefaultResolver.LookupHost(r.Context(), host)
		if err != nil || len(addrs) == 0 {
			http.Error(w, fmt.Sprintf("no upstream for %s: %v", host, err), http.StatusBadGateway)
			return
		}
		sort.Strings(addrs)
		addr := net.JoinHostPort(addrs[next.Add(1)%uint64(len(addrs))], appPort)
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = "http", addr
		resp, err := transport.RoundTrip(out)
		if err != nil {
			http.Error(w, fmt.Sprintf("upstream %s: %v", addr, err), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})
	srv := &http.Server{Addr: ":" + port, Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintln(os.Stderr, srv.ListenAndServe())
	os.Exit(1)
}
