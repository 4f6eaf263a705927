"""The held-mail viewer's pure parts: reading a stored message as a mail program would (mime),
making its HTML safe to show (html), and the signed links its frame is served under (token)."""
