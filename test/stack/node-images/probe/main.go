// The test workload of the local stack's node smoke test, one static binary:
//
//	probe serve PORT    answers every HTTP request with "tally-probe <hostname>"
//	probe get URL       prints the body of an HTTP GET (exit 1 on any error or a status other than 200)
//	probe resolve NAME  prints the addresses NAME resolves to through the pod's resolv.conf
//	probe routes        prints the pod's IPv4 routes (/proc/net/route) as "DESTINATION/PREFIX via GATEWAY"
//	probe kube          GETs /version from the API server with the pod's service-account credentials, as in-cluster
//	                    clients do (KUBERNETES_SERVICE_HOST/PORT, the mounted token and CA)
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe serve PORT | get URL | resolve NAME | kube")
	}
	switch os.Args[1] {
	case "serve":
		host, _ := os.Hostname()
		http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "tally-probe %s\n", host) })
		fmt.Printf("tally-probe %s listening on :%s\n", host, arg(2))
		fail(http.ListenAndServe(":"+arg(2), nil).Error())
	case "get":
		client := &http.Client{Timeout: 5 * time.Second}
		print(client.Get(arg(2)))
	case "resolve":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, arg(2))
		if err != nil {
			fail(err.Error())
		}
		fmt.Println(strings.Join(addrs, "\n"))
	case "routes":
		table, err := os.ReadFile("/proc/net/route")
		if err != nil {
			fail(err.Error())
		}
		for _, line := range strings.Split(string(table), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			ones, _ := net.IPMask(hexIP(f[7])).Size()
			fmt.Printf("%s/%d via %s\n", hexIP(f[1]), ones, hexIP(f[2]))
		}
	case "kube":
		token, err := os.ReadFile(saDir + "/token")
		if err != nil {
			fail(err.Error())
		}
		ca, err := os.ReadFile(saDir + "/ca.crt")
		if err != nil {
			fail(err.Error())
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "kubernetes.default.svc"},
		}}
		url := "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")) + "/version"
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		print(client.Do(req))
	default:
		fail("unknown command " + os.Args[1])
	}
}

// hexIP reads an address of /proc/net/route: 8 hex digits, in the machine's (little-endian) byte order.
func hexIP(h string) net.IP {
	var v uint32
	fmt.Sscanf(h, "%x", &v)
	return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).To4()
}

func arg(i int) string {
	if len(os.Args) <= i {
		fail("missing argument")
	}
	return os.Args[i]
}

func print(res *http.Response, err error) {
	if err != nil {
		fail(err.Error())
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	os.Stdout.Write(body)
	if res.StatusCode != http.StatusOK {
		fail(res.Status)
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "probe:", message)
	os.Exit(1)
}
