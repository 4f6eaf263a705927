"""Sample messages for the viewer, written for these tests: what scripts send, and what a
hostile or broken one might."""

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def newsletter(remote_url: str = "http://127.0.0.1:9/pixel.png") -> bytes:
    """An HTML mail with everything a viewer must neutralise or show: a script, an onerror
    handler, a form, a javascript: link, a remote image and a cid: image."""
    import base64

    html = (
        "<html><head><style>p{color:red}</style><script>document.title='ran'</script></head><body>"
        "<h1 id=hello>Hello Zoë</h1>"
        f'<img id=remote src="{remote_url}" alt=remote>'
        '<img id=inline src="cid:logo@shop.example" alt=logo>'
        "<img id=broken src=x onerror=\"document.body.setAttribute('data-ran','yes')\">"
        '<form action="http://127.0.0.1:9/steal" method=post><input name=card><button>Pay</button></form>'
        '<a id=js href="javascript:alert(1)">click</a> <a id=ok href="https://example.org/">site</a>'
        "<script>document.body.setAttribute('data-ran','yes')</script>"
        "</body></html>"
    )
    encoded = base64.encodebytes(PNG).decode().replace("\n", "\r\n")
    return (
        "From: =?utf-8?q?Zo=C3=AB?= <web@shop.example>\r\n"
        "To: reader@sink.test\r\n"
        "Subject: =?iso-8859-1?q?Caf=E9_news?=\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        "--outer\r\n"
        'Content-Type: multipart/related; boundary="rel"\r\n\r\n'
        "--rel\r\n"
        'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        "--alt\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "Hello Zo=C3=AB, the text part.\r\n"
        "--alt\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(html.encode()).decode().replace("\n", "\r\n")
        + "--alt--\r\n"
        "--rel\r\n"
        "Content-Type: image/png\r\n"
        "Content-ID: <logo@shop.example>\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" + encoded + "--rel--\r\n"
        "--outer\r\n"
        'Content-Type: application/pdf; name="invoice.pdf.exe"\r\n'
        'Content-Disposition: attachment; filename="invoice.pdf.exe"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        "TVqQAAMAAAAEAAAA\r\n"
        "--outer--\r\n"
    ).encode()


WINDOWS_1252 = (
    b"From: shop@shop.example\r\nSubject: =?windows-1252?q?=93Quoted=94_=80_price?=\r\n"
    b"Content-Type: text/plain; charset=windows-1252\r\n\r\n\x93Smart quotes\x94 cost \x80 5\r\n"
)
LATIN_1_LABEL = b"Subject: latin\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\nCaf\xe9 \x80uro\r\n"
UNDECLARED_UTF8 = "Subject: raw\r\n\r\nna\u00efve r\u00e9sum\u00e9\r\n".encode()
BAD_CHARSET = b"Subject: bad\r\nContent-Type: text/plain; charset=x-no-such-thing\r\n\r\nplain words \xff\r\n"
BAD_BASE64 = b"Subject: b64\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64 at all===\r\n"


def nested(depth: int) -> bytes:
    head = b"Subject: deep\r\n"
    body = b""
    for level in range(depth):
        head_part = f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n'.encode()
        body += head_part
    body += b"Content-Type: text/plain\r\n\r\nbottom\r\n"
    for level in reversed(range(depth)):
        body += f"--b{level}--\r\n".encode()
    return head + body


def huge_headers(count: int, length: int) -> bytes:
    lines = b"".join(b"X-Filler-%d: %s\r\n" % (n, b"y" * length) for n in range(count))
    return b"Subject: many headers\r\n" + lines + b"\r\nbody\r\n"
