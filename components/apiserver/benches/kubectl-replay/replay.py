# Static replay of recorded API responses (kubectl's irreducible client time).
import sys, os, urllib.parse, http.server, socketserver
D = sys.argv[1]
pages = {}
for f in os.listdir(D):
    if f.startswith("page") and not f.endswith(".key"):
        key = open(os.path.join(D, f + ".key")).read().strip()
        pages[urllib.parse.unquote(key)] = open(os.path.join(D, f), "rb").read()
api = open(os.path.join(D, "api"), "rb").read(); apis = open(os.path.join(D, "apis"), "rb").read()
full = open(os.path.join(D, "full"), "rb").read()
DISC = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        u = urllib.parse.urlparse(self.path); q = urllib.parse.parse_qs(u.query)
        if u.path == "/api": body, ct = api, DISC
        elif u.path == "/apis": body, ct = apis, DISC
        elif u.path == "/api/v1/pods" and "limit" not in q: body, ct = full, "application/json"
        elif u.path == "/api/v1/pods": body, ct = pages[q.get("continue", [""])[0]], "application/json"
        else:
            self.send_response(404); self.send_header("content-length", "0"); self.end_headers(); return
        self.send_response(200); self.send_header("content-type", ct); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
