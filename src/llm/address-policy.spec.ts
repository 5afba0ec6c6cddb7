import { describe, expect, it } from '@jest/globals';
import { addressAdmitted, addressAllowed, classifyAddress, ipLiteral, isLoopback, type HostNaming } from './address-policy.js';

/** The host part of a URL as the WHATWG parser normalises it (the only parser we use). */
const hostOf = (url: string): string => new URL(url).hostname;

describe('address policy', () => {
  const forbidden = [
    '169.254.169.254',
    '169.254.0.1',
    '100.100.100.200',
    'fe80::1',
    'febf:ffff::1',
    'fd00:ec2::254',
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
    '64:ff9b::169.254.169.254',
    '64:ff9b:1::a9fe:a9fe',
    '2002:a9fe:a9fe::1',
    '::169.254.169.254',
    '224.0.0.1',
    'ff02::1',
    '255.255.255.255',
    '240.0.0.1',
    'not-an-ip',
    'fe80::1%eth0',
  ];
  it.each(forbidden)('always refuses %s', (address) => {
    const verdict = classifyAddress(address);
    expect(verdict.kind).toBe('forbidden');
    expect(addressAllowed(verdict, true)).toBe(false);
    expect(addressAllowed(verdict, false)).toBe(false);
  });

  const privates = [
    '127.0.0.1',
    '127.255.255.254',
    '10.0.0.1',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '100.64.0.1',
    '100.127.255.255',
    '0.0.0.0',
    '0.1.2.3',
    '::1',
    '::',
    'fc00::1',
    'fd12:3456::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.1.2.3',
    '64:ff9b::10.0.0.1',
    '2002:c0a8:0101::1',
    '198.18.0.1',
  ];
  it.each(privates)('refuses %s unless private addresses are allowed', (address) => {
    const verdict = classifyAddress(address);
    expect(verdict.kind).toBe('private');
    expect(addressAllowed(verdict, false)).toBe(false);
    expect(addressAllowed(verdict, true)).toBe(true);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '169.255.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    'allows the public address %s',
    (address) => {
      expect(classifyAddress(address).kind).toBe('public');
    },
  );

  it('names the deciding range, embedded IPv4 included', () => {
    expect(classifyAddress('169.254.169.254').range).toContain('169.254.0.0/16');
    expect(classifyAddress('::ffff:169.254.169.254').range).toContain('embedded in ::ffff:a9fe:a9fe');
    expect(classifyAddress('[::1]').kind).toBe('private');
  });

  describe('spellings normalised by the WHATWG URL parser', () => {
    const loopbackSpellings = [
      'http://2130706433/',
      'http://0x7f000001/',
      'http://0177.0.0.1/',
      'http://0x7f.1/',
      'http://127.1/',
      'http://[::ffff:127.0.0.1]/',
      'http://[0:0:0:0:0:ffff:7f00:1]/',
      'http://[::1]/',
    ];
    it.each(loopbackSpellings)('%s is a loopback literal', (url) => {
      const literal = ipLiteral(hostOf(url));
      expect(literal).not.toBeNull();
      expect(classifyAddress(literal!).kind).toBe('private');
    });

    it.each(['http://2852039166/', 'http://0xa9fea9fe/', 'http://0251.0376.0251.0376/', 'http://[::ffff:a9fe:a9fe]/'])(
      '%s is the metadata address',
      (url) => {
        const literal = ipLiteral(hostOf(url));
        expect(classifyAddress(literal!).kind).toBe('forbidden');
      },
    );

    it('a host name is not a literal', () => {
      expect(ipLiteral(hostOf('http://llm.example.com/v1'))).toBeNull();
      expect(ipLiteral(hostOf('http://localhost/v1'))).toBeNull();
    });
  });

  describe('what the allowlist names (CONTRACT §3)', () => {
    const cases: [string, HostNaming, boolean, boolean][] = [
      // address, naming, allowPrivate, admitted
      ['127.0.0.1', 'literal', false, true],
      ['::1', 'literal', false, true],
      ['10.0.0.5', 'literal', false, true],
      ['169.254.169.254', 'literal', false, true],
      ['fd00:ec2::254', 'literal', false, true],
      ['127.0.0.1', 'localhost', false, true],
      ['::1', 'localhost', false, true],
      ['::ffff:127.0.0.1', 'localhost', false, true],
      ['10.0.0.5', 'localhost', false, false],
      ['10.0.0.5', 'localhost', true, true],
      ['169.254.169.254', 'localhost', true, false],
      ['127.0.0.1', 'name', false, false],
      ['127.0.0.1', 'name', true, true],
      ['169.254.169.254', 'name', true, false],
      ['8.8.8.8', 'name', false, true],
      ['127.0.0.1', null, false, false],
      ['169.254.169.254', null, true, false],
    ];
    it.each(cases)('%s named %s (private allowed: %s) -> admitted %s', (address, naming, allowPrivate, admitted) => {
      expect(addressAdmitted(classifyAddress(address), naming, allowPrivate)).toBe(admitted);
    });

    it('knows loopback in every spelling, and nothing else', () => {
      for (const address of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', '[::1]']) {
        expect([address, isLoopback(address)]).toEqual([address, true]);
      }
      for (const address of ['10.0.0.1', '0.0.0.0', '::', '64:ff9b::7f00:1', 'localhost', '169.254.169.254']) {
        expect([address, isLoopback(address)]).toEqual([address, false]);
      }
    });
  });
});
