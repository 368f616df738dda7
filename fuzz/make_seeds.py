#!/usr/bin/env python3
"""Writes the seed corpus in fuzz/corpus/ from tests/vectors/.

The signed requests of the verify_request target come from Rust instead:
    GNAPD_WRITE_SEEDS=1 cargo test --lib fuzzing::tests::signed_seeds_verify
and the JWS proofs of the jws_proof target too:
    GNAPD_WRITE_SEEDS=1 cargo test --lib fuzzing::jws_proof::seeds
Run from anywhere; files are named seed-* (the only corpus files git keeps).
"""
import glob
import json
import os

FUZZ = os.path.dirname(os.path.abspath(__file__))
V = os.path.join(FUZZ, '..', 'tests', 'vectors')


def vector(name):
    with open(os.path.join(V, name)) as f:
        return json.load(f)


def put(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(FUZZ, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed-' + name), 'wb') as f:
        f.write(data)


# signature_fields: Signature-Input LF Signature (further lines alternate).
for path in sorted(glob.glob(os.path.join(V, 'rfc9421-b-2-*.json'))):
    d = vector(os.path.basename(path))
    tag = os.path.basename(path)[len('rfc9421-'):-len('.json')]
    put('signature_fields', tag, d['signature_input_header'] + '\n' + d['signature_header'])
d = vector('rfc9421-b-4-transform.json')
put('signature_fields', 'b-4-transform', d['signature_input_header'] + '\nx=:AA==:')
for name, text in [
    ('components', 'a=("@method" "@target-uri" "@authority" "@scheme" "@request-target" "@path" '
                   '"@query" "@query-param";name="Pet" "@status");created=1;expires=2;nonce="n";'
                   'alg="ed25519";keyid="k";tag="gnap";ext=?0\na=:AA==:'),
    ('field-params', 'sf=("example-dict";sf "example-dict";key="b" "authorization";bs '
                     '"content-digest";key="sha-512" "mcp-session-id";sf "@method";req '
                     '"signature";key="x" "signature-input";sf);created=1618884473;tag="gnap"\n'
                     'sf=:dGVzdA==:'),
    ('multi', 'one=("@method");created=1, two=("@path" "date");keyid="k2";tag="gnap-rotate"\n'
              'one=:AA==:, two=:AQI=:\nthree=("content-type");created=-5\nthree=:/w==:'),
    ('gnap', 'sig1=("@method" "@target-uri" "content-digest" "authorization" "mcp-session-id" '
             '"mcp-method");created=1790000000;keyid="test-key-ed25519";tag="gnap"\nsig1=:AAAA:'),
    ('errors', 'a=("@method" "@method"), b=("X-Upper"), c=("@nope"), d="item", e=("x";tr)\n'
               'a=abc, b=:not base64:'),
]:
    put('signature_fields', name, text)

# content_digest: field value LF content.
cd = vector('rfc9530-content-digest.json')
for i, ex in enumerate(cd['examples']):
    if 'content' in ex:
        put('content_digest', f'rfc9530-{i}', ex['Content-Digest'] + '\n' + ex['content'])
        if 'Content-Digest(sha-512)' in ex:
            put('content_digest', f'rfc9530-{i}-512',
                ex['Content-Digest(sha-512)'] + '\n' + ex['content'])
    else:
        put('content_digest', f'rfc9530-{i}-both', ex['header'] + '\n' + cd['examples'][0]['content'])
put('content_digest', 'insecure', 'md5=:kAFQmDzST7DWlj99KOF/cg==:, unixsum=:AA==:;x=1\nabc')
put('content_digest', 'mixed', 'sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:, '
                               'md5=:AA==:, sha-512=(:AA==:)\nabc')

# jwk: the RFC 9421 B.1 test keys (public and private) and the shared secret.
for path in sorted(glob.glob(os.path.join(V, '*.jwk.json'))):
    with open(path, 'rb') as f:
        put('jwk', os.path.basename(path)[:-len('.json')], f.read())
put('jwk', 'ed25519-alg', '{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"k",'
                          '"x":"JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"}')
put('jwk', 'rsa-rs256', json.dumps({  # RFC 7638 section 3.1
    'kty': 'RSA', 'alg': 'RS256', 'kid': '2011-04-29', 'e': 'AQAB',
    'n': '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_'
         'BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_'
         'FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4'
         'vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw'},
    separators=(',', ':')))

# verify_request: RFC 9421 requests with their signature fields, an unsigned
# request, the lenient form, and [mutation kind, variant, payload] inputs.
for n in (3, 6):
    d = vector(f'rfc9421-b-2-{n}.json')
    head, body = d['message_raw'].split('\n\n', 1)
    put('verify_request', f'rfc9421-b-2-{n}.http',
        head + '\nSignature-Input: ' + d['signature_input_header']
        + '\nSignature: ' + d['signature_header'] + '\n\n' + body)
put('verify_request', 'unsigned.http', 'GET /demo?x=1 HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n')
put('verify_request', 'lenient.txt', 'Signature-Input: sig1=("@method" "@target-uri");'
                                     'created=1790000000;tag="gnap"\nSignature: sig1=:AAAA:\n\nbody')
SIGNED_INPUT = ('sig1=("@method" "@target-uri" "content-digest" "authorization" "mcp-session-id" '
                '"mcp-method");created=1790000000;keyid="test-key-ed25519";tag="gnap"')
for kind, variant, payload in [
    (0, 15, b'post'),
    (1, 7, b'https://as.example/gnap/tx?x=2'),
    (2, 7, b'\x02GNAP 80UPRY5NM33OMUKMKSKU '),
    (3, 7, b'\x00'),
    (4, 7, b'\x02GNAP x'),
    (5, 7, b'{"access_token":{"access":["foo"]},"client":"7C7C4AZ9KHRS6X63AJAO"}'),
    (6, 15, (300).to_bytes(2, 'little', signed=True)),
    (7, 15, b'\x05\x01\x00'),
    (8, 7, SIGNED_INPUT.encode()),
    (9, 7, b'\x02AUTHORIZATION'),
]:
    put('verify_request', f'mutate-{kind}', bytes([kind, variant]) + payload)

# grant_request: request bodies, valid and each refusal class once.
ED_JWK = {'kty': 'OKP', 'crv': 'Ed25519', 'kid': 'k1',
          'x': 'JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs'}
CLIENT = {'key': {'proof': 'httpsig', 'jwk': ED_JWK}, 'class_id': 'agent',
          'display': {'name': 'Agent', 'uri': 'https://agent.example/',
                      'logo_uri': 'data:image/png;base64,AAAA'}}
for name, body in [
    ('minimal', {'access_token': {'access': ['mcp:github']}, 'client': CLIENT}),
    ('multiple', {'access_token': [
        {'label': 'read', 'access': ['mcp:a', {'type': 'mcp', 'identifier': 'gh',
                                                'actions': ['tools/call'], 'tools': ['search']}]},
        {'label': 'other', 'flags': ['bearer'],
         'access': [{'type': 'photo-api', 'actions': ['read'], 'locations': ['https://p.example/'],
                     'datatypes': ['metadata'], 'privileges': ['admin'], 'note': {'x': [1, 'y']}}]}],
        'client': CLIENT}),
    ('interact', {'access_token': {'access': ['mcp:a']}, 'client': 'instance-7',
                  'interact': {'start': ['redirect', 'user_code', 'user_code_uri'],
                               'finish': {'method': 'redirect', 'uri': 'https://c.example/cb',
                                          'nonce': 'LKLTI25DK82FX4T4QFZC', 'hash_method': 'sha-512'},
                               'hints': {'ui_locales': ['en']}}}),
    ('subject-user', {'subject': {'sub_id_formats': ['opaque', 'iss_sub'],
                                  'assertion_formats': ['id_token'],
                                  'sub_ids': [{'format': 'opaque', 'id': 'J2G8G8O4AZ'}]},
                      'user': {'sub_ids': [{'format': 'email', 'email': 'u@example.com'}],
                               'assertions': [{'format': 'saml2', 'value': '<a>\n</a>'}]},
                      'client': CLIENT}),
    ('explicit-proof', {'access_token': {'access': ['x']},
                        'client': {'key': {'proof': {'method': 'httpsig', 'alg': 'ed25519',
                                                     'content-digest-alg': 'sha-256'}, 'jwk': ED_JWK}}}),
    ('user-ref', {'access_token': {'access': ['x']}, 'client': CLIENT, 'user': 'XUT2MFM1XBIKJKSDU8QM'}),
]:
    put('grant_request', name, json.dumps(body, separators=(',', ':')))
for name, text in [
    ('hidden', '{"access_token":{"access":["mcp:a\\u202e"]},"client":"c"}'),
    ('key-ref', '{"access_token":{"access":["x"]},"client":{"key":"k"}}'),
    ('bad-flag', '{"access_token":{"access":["x"],"flags":["durable","bearer"]},"client":"c"}'),
    ('duplicate-label', '{"access_token":[{"label":"a","access":["x"]},{"label":"a","access":["y"]}],"client":"c"}'),
    ('interact-ref', '{"interact_ref":"4IFWWIKYBC2PQ6U56NL1"}'),
    ('rotation', '{"key":{"proof":"httpsig","jwk":' + json.dumps(ED_JWK) + '}}'),
    ('rotation-ref', '{"key":"other-key"}'),
    ('duplicate-member', '{"client":"a","client":{"key":"x"},"access_token":{"access":["x"]}}'),
]:
    put('grant_request', name, text)

# jsonrpc: messages, and names some decoder folds.
for name, text in [
    ('call', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues","arguments":{"q":"x"},"_meta":{"progressToken":1}}}'),
    ('read', '{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x","name":"n"}}'),
    ('notification', '{"jsonrpc":"2.0","method":"notifications/initialized"}'),
    ('response', '{"jsonrpc":"2.0","id":7,"result":{}}'),
    ('error', '{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"m"}}'),
    ('folded', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Name":"b","ur\\u0131":"c","argument\\u017f":{}}}'),
    ('escaped', '{"jsonrpc":"2.0","id":1,"method":"tools\\/call","params":{"n\\u0061me":"se\\u0061rch","name\\u0000":"x"}}'),
    ('names', 'Name\nur\u0131\nparam\u017f\n_META\nname\u0000x\n\ufb01le\npa\u00df'),
    ('batch', '[{"jsonrpc":"2.0","id":1,"method":"ping"}]'),
    ('broken', '{"jsonrpc":"2.0","Method":'),
]:
    put('jsonrpc', name, text)

# sse_filter: two chunking bytes, then an upstream's event stream.
TOOLS = '{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search_issues"},{"name":"delete_repo"}]}}'
for name, text in [
    ('tool-list', 'event: message\r\nid: e-1\r\ndata: ' + TOOLS + '\r\n\r\n'),
    ('mixed', ': keep-alive\n\nretry: 100\n\nid: 3\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n'
              'data: {"jsonrpc":"2.0",\ndata: "id":1,"result":{"content":[]}}\n\n'),
    ('bom', '\ufeffdata: ' + TOOLS + '\n\n'),
    ('folded', 'data: {"jsonrpc":"2.0","id":2,"Result":{"tools":[{"name":"delete_repo"}]}}\n\n'
               'data: {"id":3,"result":{"tools":[{"name":"search_issues","Name":"delete_repo"}]}}\n\n'),
    ('ids', 'id\ndata: x\n\nid: a\u0000b\n\nid: e-2\r\rdata: y\r\r'),
    ('batch', 'data: [' + TOOLS + ',' + TOOLS + ']\n\n'),
    ('unfinished', 'data: ' + TOOLS + '\n'),
]:
    for cuts in (b'\x00\x00', b'\x03\x11'):
        put('sse_filter', f'{name}-{cuts[0]}', cuts + text.encode())

# grant_machine: operation sequences (see src/fuzzing/grant_machine.rs:
# one byte picks the operation, the next bytes its choices).
for name, ops in [
    ('approved-rotate-revoke', [0, 0, 0, 0, 0, 10, 1, 1, 0, 1, 7, 0, 1, 8, 0, 9, 0, 11]),
    ('user-code-approved', [0, 1, 0, 1, 1, 6, 0, 0, 0, 10, 1, 1, 0, 1, 9, 0, 10, 6, 9, 0]),
    ('finish-ref-twice', [0, 1, 0, 2, 1, 6, 0, 0, 1, 10, 1, 2, 0, 1, 1, 10, 1, 2, 0, 1, 1, 9, 0]),
    ('modify-delete-spent', [0, 0, 3, 0, 1, 10, 1, 3, 0, 1, 0, 10, 1, 5, 0, 1, 4, 0, 1, 1, 0, 0, 0, 9, 1]),
    ('denied', [0, 1, 1, 1, 1, 6, 0, 1, 1, 10, 1, 1, 0, 1]),
    ('expiry', [0, 0, 2, 0, 0, 10, 4, 9, 0, 7, 0, 1, 10, 6, 1, 0, 1]),
    ('rotate-to-new-key', [0, 0, 0, 0, 0, 7, 0, 0, 7, 1, 1, 8, 1, 9, 0, 9, 1, 11, 0, 0, 0, 0, 0]),
]:
    put('grant_machine', name, bytes(ops))

# admin_socket: connections separated by NUL; $0/$1 are the pending grants'
# ids, %0/%1 their user codes; a first byte >= 0x80 pads the first line to
# the limit (0x80) or past it (0x81).
for name, connections in [
    ('upstream-credentials', [
        '{"op":"upstream_add","name":"gh","url":"http://127.0.0.1:1/mcp"}',
        '{"op":"credentials_add","upstream":"gh","credential":"bearer:tok-1234567890"}',
        '{"op":"credentials_list"}', '{"op":"upstream_list"}',
        '{"op":"credentials_add","upstream":"gh","credential":"header:X-Key:hk-0987654321"}',
        '{"op":"credentials_remove","upstream":"gh"}', '{"op":"upstream_remove","name":"gh"}']),
    ('stdio-env', [
        '{"op":"upstream_add","name":"fs","url":"stdio:npx -y server"}',
        '{"op":"credentials_add","upstream":"fs","credential":"env:TOKEN=abc123def456\\nenv:OTHER=zz99887766aa"}',
        '{"op":"credentials_add","upstream":"fs","credential":"basic:user:pw-5555566666"}',
        '{"op":"credentials_remove_set","id":"person:x"}']),
    ('grants', [
        '{"op":"grants_pending"}', '{"op":"grants_approve","code":"$0"}',
        '{"op":"grants_deny","code":"%1"}', '{"op":"grants_approve","code":"$0"}',
        '{"op":"grants_deny","code":"$1"}']),
    ('configured', [
        '{"op":"upstream_remove","name":"cfg"}',
        '{"op":"credentials_add","upstream":"cfg","credential":"bearer:cfg-11223344556"}',
        '{"op":"credentials_remove","upstream":"cfg"}',
        '{"op":"upstream_add","name":"cfg","url":"http://127.0.0.1:2/mcp"}']),
    ('errors', [
        '{"op":"nope"}', 'not json', '{"op":"upstream_add","name":"x"}',
        '{"op":"upstream_list"}\n{"op":"upstream_remove","name":"cfg"}',
        '{"op":"operator_link"}', '{"op":"operator_sign_out"}',
        '{"op":"credentials_add","upstream":"gh","credential":"bearer:secret-77777777","extra":1}',
        '{"op":"upstream_add","name":"a b","url":"ftp://x"}']),
]:
    put('admin_socket', name, '\0'.join(connections))
for pad in (0x80, 0x81):
    put('admin_socket', f'padded-{pad:x}', bytes([pad]) + b'{"op":"upstream_list"}\n')
