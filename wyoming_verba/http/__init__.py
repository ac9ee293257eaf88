"""The HTTP front: an OpenAI-compatible speech API and a page to hear every voice, served
beside the Wyoming listener on the same App (chain, cache, metrics), and speaking through
the same `reply.Reply` as a Wyoming request."""
