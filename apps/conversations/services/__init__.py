"""Conversations write layer, split by road:
- threads.py     opening/updating conversations (shared by send and receive)
- sending.py     POST /messages and the internal sends: validation, asking the policy
                 (apps.conversations.policy), scheduling, cancel
- writer.py      the one message writer: the only code that inserts outbound messages (one and many)
- fallback.py    the SMS fallback (policy + writer)
- dispatch.py    the dispatcher: claims, token buckets, provider calls, retries, attempts
- media.py       uploads, sniffing, Meta media ids, inbound media download
- receiving.py   inbound messages from the webhook road (and its one import point)
- receipts.py    delivery statuses from the webhook road: forward only, reconciliation, charges
- inbox.py       assignment, state changes, notes (the operator inbox)
- autoreplies.py welcome / out-of-office / keyword rules
Import the module you need: `from apps.conversations.services import sending`.
"""
