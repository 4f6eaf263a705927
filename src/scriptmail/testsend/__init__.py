"""The test message a hosting's owner sends to see their own path at work: what it says, how its
signature is read back, and what its recipient's state means for the page. Pure."""
