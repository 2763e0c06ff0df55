#!/usr/bin/env python3
"""creds.py KUBECONFIG DIR: writes DIR/{ca,crt,key}.pem and DIR/url from an admin kubeconfig."""
import base64, os, sys
import yaml

kc = yaml.safe_load(open(sys.argv[1]))
d = sys.argv[2]
for name, data in [("ca.pem", kc["clusters"][0]["cluster"]["certificate-authority-data"]),
                   ("crt.pem", kc["users"][0]["user"]["client-certificate-data"]),
                   ("key.pem", kc["users"][0]["user"]["client-key-data"])]:
    with open(os.path.join(d, name), "wb") as f:
        f.write(base64.b64decode(data))
with open(os.path.join(d, "url"), "w") as f:
    f.write(kc["clusters"][0]["cluster"]["server"] + "\n")
