package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// A minimal HTTP/1.1 response parser over a connection's read buffer. It reads only
// what the report needs: the status, the framing (Content-Length, chunked, or up to the
// end of the connection), Connection: close, X-Served-By and X-Model-Version.

type response struct {
	status       int
	close        bool // the server will close the connection after this response
	servedBy     []byte
	modelVersion []byte
}

var errIncomplete = errors.New("incomplete response")

// parseResponse parses the response at the start of buf; eof says no more bytes will
// come. It returns errIncomplete until the whole response is in buf.
func parseResponse(buf []byte, eof bool) (response, error) {
	var resp response
	headerEnd := bytes.Index(buf, []byte("\r\n\r\n"))
	if headerEnd < 0 {
		return resp, incomplete(eof)
	}
	head, body := buf[:headerEnd], buf[headerEnd+4:]
	statusLine, headers, _ := bytes.Cut(head, []byte("\r\n"))
	if len(statusLine) < 12 || !bytes.HasPrefix(statusLine, []byte("HTTP/1.")) {
		return resp, fmt.Errorf("bad status line %q", statusLine)
	}
	status, err := strconv.Atoi(string(statusLine[9:12]))
	if err != nil {
		return resp, fmt.Errorf("bad status line %q", statusLine)
	}
	resp.status = status
	length, chunked := -1, false
	for len(headers) > 0 {
		var line []byte
		line, headers, _ = bytes.Cut(headers, []byte("\r\n"))
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return resp, fmt.Errorf("bad content-length %q", value)
			}
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("connection")):
			resp.close = bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("x-served-by")):
			resp.servedBy = value
		case bytes.EqualFold(name, []byte("x-model-version")):
			resp.modelVersion = value
		}
	}
	switch {
	case chunked:
		return resp, chunkedComplete(body, eof)
	case length >= 0:
		if len(body) < length {
			return resp, incomplete(eof)
		}
		return resp, nil
	case resp.status == 204 || resp.status == 304 || resp.status < 200:
		return resp, nil
	default: // no framing: the body runs to the end of the connection
		resp.close = true
		if eof {
			return resp, nil
		}
		return resp, errIncomplete
	}
}

func chunkedComplete(body []byte, eof bool) error {
	for {
		line, rest, found := bytes.Cut(body, []byte("\r\n"))
		if !found {
			return incomplete(eof)
		}
		sizeText, _, _ := bytes.Cut(line, []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 { // the last chunk, then trailers up to an empty line
			if rest, found = cutTrailers(rest); !found {
				return incomplete(eof)
			}
			return nil
		}
		if int64(len(rest)) < size+2 {
			return incomplete(eof)
		}
		body = rest[size+2:]
	}
}

func cutTrailers(rest []byte) ([]byte, bool) {
	for {
		line, after, found := bytes.Cut(rest, []byte("\r\n"))
		if !found {
			return rest, false
		}
		if len(line) == 0 {
			return after, true
		}
		rest = after
	}
}

// incomplete: more bytes are needed, or the connection ended before they came.
func incomplete(eof bool) error {
	if eof {
		return errors.New("connection closed in the middle of a response")
	}
	return errIncomplete
}

// buildRequest renders a template's request once: it is resent byte for byte.
func buildRequest(t Template, host string, body []byte) []byte {
	var b bytes.Buffer
	method := t.Method
	if method == "" {
		method = "POST"
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, t.Path, host)
	if len(body) > 0 || method == "POST" || method == "PUT" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	for name, value := range t.Headers {
		fmt.Fprintf(&b, "%s: %s\r\n", name, value)
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}
