import { describe, expect, it } from 'vitest';
import { hubWsUrl } from './agent.js';
import { matchAllow } from './commands/system-run.js';
import { DEFAULT_ALLOW } from './config.js';

describe('agent local policy', () => {
  it('allowlist entries are argv prefixes matched token by token', () => {
    expect(matchAllow(['systemctl', 'status', 'nginx'], DEFAULT_ALLOW)).toBe('systemctl status');
    expect(matchAllow(['systemctl', 'stop', 'nginx'], DEFAULT_ALLOW)).toBeUndefined();
    expect(matchAllow(['ip', 'addr', 'show'], DEFAULT_ALLOW)).toBe('ip addr');
    expect(matchAllow(['ip', 'route'], DEFAULT_ALLOW)).toBeUndefined();
    expect(matchAllow(['/bin/echo', 'x'], DEFAULT_ALLOW)).toBeUndefined();
    expect(matchAllow(['echo;id'], DEFAULT_ALLOW)).toBeUndefined();
    expect(matchAllow(['ss', '-tuln'], DEFAULT_ALLOW)).toBe('ss -tuln');
    expect(matchAllow(['ss', '-tulnp'], DEFAULT_ALLOW)).toBeUndefined();
  });

  it('accepts http(s) hub URLs and defaults the path to /ws', () => {
    expect(hubWsUrl('http://hub:7420')).toBe('ws://hub:7420/ws');
    expect(hubWsUrl('https://hub.example.com')).toBe('wss://hub.example.com/ws');
    expect(hubWsUrl('ws://hub:7420/ws/agent')).toBe('ws://hub:7420/ws/agent');
  });
});
