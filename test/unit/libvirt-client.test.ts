// LibvirtClient against libvirt's own in-process test driver (test:///default: a running domain
// "test", no daemon, no VM): lookups by name and UUID, the live XML, and the errors a user gets.
// The real daemons, events and domains are in test/integration/libvirt.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import { LibvirtClient, LibvirtError, defaultLibvirtUri, locateDisplay } from '../../src/libvirt';

const client = new LibvirtClient('test:///default');
afterAll(() => client.close());

async function failure(p: Promise<unknown>): Promise<LibvirtError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(LibvirtError);
  const err = e as LibvirtError;
  expect(err.message).not.toContain('\n');
  expect(err.message).toContain(`[${err.code}] Fix: `);
  return err;
}

describe('LibvirtClient (test:///default)', () => {
  it('finds a domain by name and by UUID, running, with its id', async () => {
    const byName = await client.domain('test');
    expect(byName).toMatchObject({ name: 'test', active: true, id: 1 });
    expect(await client.domain(byName.uuid)).toEqual(byName);
  });

  it('reads the live XML of the domain', async () => {
    expect(await client.xml('test')).toMatch(/^<domain type='test' id='1'>/);
  });

  it('ELIBVIRT_NO_DOMAIN naming the domain and the URI, with the virsh command that lists the names', async () => {
    const err = await failure(client.domain('nope'));
    expect(err.code).toBe('ELIBVIRT_NO_DOMAIN');
    expect(err.message).toContain("no libvirt domain named 'nope' at test:///default");
    expect(err.fix).toBe('check the name with: virsh -c test:///default list --all');
  });

  it('ELIBVIRT_NO_DBUS_DISPLAY for a running domain without <graphics type=dbus/>, pointing at doctor', async () => {
    const err = await failure(locateDisplay(client, 'test'));
    expect(err.code).toBe('ELIBVIRT_NO_DBUS_DISPLAY');
    expect(err.fix).toContain('qemu-dbus-bridge doctor --libvirt test');
  });

  it('ELIBVIRT_CONNECT when nothing listens at the URI', async () => {
    const other = new LibvirtClient('qemu+unix:///system?socket=/nonexistent/libvirt-sock');
    try {
      const err = await failure(other.domain('test'));
      expect(err.code).toBe('ELIBVIRT_CONNECT');
      expect(err.message).toContain('cannot connect to libvirt at qemu+unix:///system?socket=/nonexistent/libvirt-sock');
    } finally {
      await other.close();
    }
  });
});

describe('defaultLibvirtUri', () => {
  it('LIBVIRT_DEFAULT_URI wins; otherwise qemu:///session for a user and qemu:///system for root', () => {
    expect(defaultLibvirtUri({ LIBVIRT_DEFAULT_URI: 'qemu+ssh://host/system' }, 1000)).toBe('qemu+ssh://host/system');
    expect(defaultLibvirtUri({}, 1000)).toBe('qemu:///session');
    expect(defaultLibvirtUri({}, 0)).toBe('qemu:///system');
  });
});
