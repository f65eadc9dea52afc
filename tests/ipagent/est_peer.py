#!/usr/bin/env python3
"""A hostile EST server for the agent's EST client (tests/ipagent/est_client.sh):
HTTPS on 127.0.0.1:PORT. GET (cacerts) answers the file's certs-only PKCS#7; a
POST is answered as the HTTP Basic user name (the device name) says:
big (200, 100 KiB), chunkbig (200, chunked, 400 KiB), garbage (200, not base64
DER), other (200, the file's PKCS#7: a certificate for another key), pending
(202 + Retry-After), anything else 401.
usage: est_peer.py PORT CERT KEY PKCS7_B64_FILE"""
import base64, http.server, ssl, sys
from socketserver import ThreadingMixIn

port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
other = open(sys.argv[4], 'rb').read()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        sys.stderr.write('est_peer: %s %s\n' % (self.command, self.path))

    def answer(self, code, body, extra=()):
        self.send_response(code)
        self.send_header('Content-Type', 'application/pkcs7-mime; smime-type=certs-only')
        for k, v in extra:
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200, other)

    def do_POST(self):
        n = int(self.headers.get('Content-Length', '0'))
        if n:
            self.rfile.read(n)
        auth = self.headers.get('Authorization', '')
        mode = ''
        if auth.startswith('Basic '):
            mode = base64.b64decode(auth[6:]).decode().split(':')[0]
        if mode == 'big':
            self.answer(200, b'QUFB' * (100 * 256))
        elif mode == 'garbage':
            self.answer(200, b'this is not base64 DER!!\r\n')
        elif mode == 'other':
            self.answer(200, other)
        elif mode == 'pending':
            self.answer(202, b'', [('Retry-After', '60')])
        elif mode == 'chunkbig':
            self.send_response(200)
            self.send_header('Transfer-Encoding', 'chunked')
            self.end_headers()
            chunk = b'QUFB' * 1024
            try:
                for _ in range(100):
                    self.wfile.write(b'%x\r\n%s\r\n' % (len(chunk), chunk))
                self.wfile.write(b'0\r\n\r\n')
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self.answer(401, b'no', [('WWW-Authenticate', 'Basic realm="x"')])


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
class S(ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = S(('127.0.0.1', port), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print('listening', flush=True)
srv.serve_forever()
