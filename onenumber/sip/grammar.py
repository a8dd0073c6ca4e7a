"""RFC 3261 §25 ABNF pieces as compiled regular expressions (in the manner of h11's _abnf.py).

Each rule is quoted beside the pattern that implements it. Patterns are written so that
every repetition has one way to match (possessive where it matters): a hostile 64 KiB
value must cost linear time, never exponential backtracking.

Depends on nothing but `re`.
"""

from __future__ import annotations

import re

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN = rf"[{TOKEN_CHARS}]++"

# unreserved = alphanum / mark;  mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
# escaped = "%" HEXDIG HEXDIG
ESCAPED = r"%[0-9A-Fa-f]{2}"

# user = 1*( unreserved / escaped / user-unreserved )
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
USER = rf"(?:[{UNRESERVED}&=+$,;?/]|{ESCAPED})++"
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD = rf"(?:[{UNRESERVED}&=+$,]|{ESCAPED})*+"

# host = hostname / IPv4address / IPv6reference
# hostname = *( domainlabel "." ) toplabel [ "." ] (loosened: labels of alphanum and "-")
# IPv6reference = "[" IPv6address "]" (loosened: RFC 5118 asks to tolerate the 3-colon form)
IPV6_REFERENCE = r"\[[0-9A-Fa-f:.]++\]"
HOST = rf"(?:{IPV6_REFERENCE}|[A-Za-z0-9][A-Za-z0-9\-.]*+)"

# uri-parameter = pname [ "=" pvalue ];  pname / pvalue = 1*paramchar
# paramchar = param-unreserved / unreserved / escaped
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
PARAMCHAR = rf"(?:[{UNRESERVED}\[\]/:&+$]|{ESCAPED})"
URI_PARAM = rf"{PARAMCHAR}++(?:={PARAMCHAR}++)?+"

# headers = "?" header *( "&" header );  header = hname "=" hvalue
# hname = 1*( hnv-unreserved / unreserved / escaped );  hvalue = *( hnv-unreserved / unreserved / escaped )
# hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
HNVCHAR = rf"(?:[{UNRESERVED}\[\]/?:+$]|{ESCAPED})"
URI_HEADER = rf"{HNVCHAR}++={HNVCHAR}*+"

# SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]   (applied after "sip:")
# userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
SIP_URI_REST = re.compile(
    rf"(?:(?P<user>{USER})(?::(?P<password>{PASSWORD}))?@)?"
    rf"(?P<host>{HOST})(?::(?P<port>[0-9]{{1,5}}))?"
    rf"(?P<params>(?:;{URI_PARAM})*+)"
    rf"(?:\?(?P<headers>{URI_HEADER}(?:&{URI_HEADER})*+))?"
)
# the same without the headers part: a liberal second try for peers that leave "@" or
# other octets unescaped in URI headers (Replaces=…); headers are then kept verbatim
SIP_URI_REST_NOHDR = re.compile(
    rf"(?:(?P<user>{USER})(?::(?P<password>{PASSWORD}))?@)?"
    rf"(?P<host>{HOST})(?::(?P<port>[0-9]{{1,5}}))?"
    rf"(?P<params>(?:;{URI_PARAM})*+)"
)

# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*+")
# absoluteURI = scheme ":" ( hier-part / opaque-part ): printable, no LWS, no <>" (checked loosely)
ABSOLUTE_REST = re.compile(r"[^\x00-\x20\x7f<>\"]++")

# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*+"'

# generic-param = token [ EQUAL gen-value ];  gen-value = token / host / quoted-string
# (host loosened to the token characters plus ":[]", which covers IPv6 with and without brackets)
GEN_VALUE = rf"(?:[{TOKEN_CHARS}:\[\]]++|{QUOTED})"
# one ";param[=value]" with the SWS that SEMI and EQUAL allow around it
# the common case, no quotes and no whitespace: one match checks the whole parameter list
SIMPLE_PARAMS = re.compile(rf"(?:;[{TOKEN_CHARS}]++(?:=[{TOKEN_CHARS}:\[\]]++)?+)++")
PARAM_ITEM = re.compile(rf"[ \t]*+;[ \t]*+({TOKEN})(?:[ \t]*+=[ \t]*+({GEN_VALUE}))?+[ \t]*+")

# name-addr = [ display-name ] LAQUOT addr-spec RAQUOT;  display-name = *(token LWS)/ quoted-string
# LAQUOT = SWS "<" and RAQUOT = ">" SWS: no white space inside the brackets
NAME_ADDR = re.compile(
    rf"(?:(?P<quoted>{QUOTED})|(?P<tokens>{TOKEN}(?:[ \t]++{TOKEN})*+))?+[ \t]*+"
    r"<(?P<uri>[^<>\s]++)>(?P<params>.*+)",
    re.S,
)

# via-parm = sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol = protocol-name SLASH protocol-version SLASH transport;  sent-by = host [ COLON port ]
VIA = re.compile(
    rf"(?P<proto>{TOKEN})[ \t]*+/[ \t]*+(?P<version>{TOKEN})[ \t]*+/[ \t]*+(?P<transport>{TOKEN})"
    rf"[ \t]++(?P<host>{HOST})(?:[ \t]*+:[ \t]*+(?P<port>[0-9]{{1,5}}))?+(?P<params>.*+)",
    re.S,
)

# CSeq = 1*DIGIT LWS Method
CSEQ = re.compile(rf"([0-9]{{1,10}})[ \t]++({TOKEN})")

TOKEN_RE = re.compile(TOKEN)
DIGITS = re.compile(r"[0-9]++")
# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, at the end of a Request-Line
REQUEST_LINE_VERSION = re.compile(r"SIP/[0-9]++\.[0-9]++[ \t]*$", re.I)
