// A grpc-go client for the status matrix (test/clients/status-matrix.test.ts): reads a JSON list of
// unary calls on stdin, makes each on one connection with a raw-bytes codec (no generated stubs),
// and prints one JSON result per call: what grpc-go itself reports of the status.
//
// Built offline from Debian's golang-google-grpc-dev (GOPATH=/usr/share/gocode, GO111MODULE=off).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type call struct {
	ID        string            `json:"id"`
	Path      string            `json:"path"`
	Request   string            `json:"request"`
	Metadata  map[string]string `json:"metadata"`
	TimeoutMs int               `json:"timeoutMs"`
}

type result struct {
	ID       string `json:"id"`
	Code     uint32 `json:"code"`
	Message  string `json:"message"`
	Status   string `json:"status,omitempty"`
	Response string `json:"response,omitempty"`
	Error    string `json:"error,omitempty"`
	Ms       int64  `json:"ms"`
}

// rawCodec passes request and response bytes through, so the caller serializes with its own schema.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: want *[]byte, got %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: want *[]byte, got %T", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: grpcgo-client host:port < calls.json")
		os.Exit(2)
	}
	var calls []call
	if err := json.NewDecoder(os.Stdin).Decode(&calls); err != nil {
		fmt.Fprintln(os.Stderr, "bad input:", err)
		os.Exit(2)
	}
	dialCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(dialCtx, os.Args[1], grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	results := make([]result, 0, len(calls))
	for _, c := range calls {
		results = append(results, invoke(conn, c))
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		os.Exit(1)
	}
}

func invoke(conn *grpc.ClientConn, c call) result {
	req, err := base64.StdEncoding.DecodeString(c.Request)
	if err != nil {
		return result{ID: c.ID, Error: "bad request base64: " + err.Error()}
	}
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if len(c.Metadata) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, metadata.New(c.Metadata))
	}
	var resp []byte
	started := time.Now()
	err = conn.Invoke(ctx, c.Path, &req, &resp, grpc.ForceCodec(rawCodec{}))
	s := status.Convert(err)
	out := result{ID: c.ID, Code: uint32(s.Code()), Message: s.Message(), Ms: time.Since(started).Milliseconds()}
	if err == nil {
		out.Response = base64.StdEncoding.EncodeToString(resp)
		return out
	}
	// The whole google.rpc.Status as grpc-go decoded it from grpc-status-details-bin.
	if details := s.Proto(); len(details.GetDetails()) > 0 {
		b, merr := proto.Marshal(details)
		if merr != nil {
			out.Error = "marshal status: " + merr.Error()
		} else {
			out.Status = base64.StdEncoding.EncodeToString(b)
		}
	}
	return out
}
