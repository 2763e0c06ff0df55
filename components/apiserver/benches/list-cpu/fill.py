# Creates N pods of the api bench's shape in namespace "bench" over one keep-alive HTTPS connection.
# usage: fill.py SERVER_URL CRED_DIR N   (CRED_DIR holds ca, crt, key PEM files)
import http.client, ssl, json, sys, urllib.parse
server, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(server)
ctx = ssl.create_default_context(cafile=d+"/ca"); ctx.load_cert_chain(d+"/crt", d+"/key"); ctx.check_hostname=False
c = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
for i in range(n):
    body = json.dumps({"apiVersion":"v1","kind":"Pod","metadata":{"name":f"p{i}","labels":{"app":"bench"}},"spec":{"containers":[{"name":"c","image":"nginx:1.25","ports":[{"containerPort":80}]}]}})
    c.request("POST", "/api/v1/namespaces/bench/pods", body, {"content-type":"application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 201, r.status
