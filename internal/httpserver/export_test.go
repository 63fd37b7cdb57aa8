package httpserver

import "net/http"

// HTTPServer exposes the underlying server, for tests of its settings.
func (s *Server) HTTPServer() *http.Server { return s.srv }
