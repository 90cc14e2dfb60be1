/** Starts a server listening (port 0: any free one) and resolves with its port; a listen error rejects. */
import type { AddressInfo, Server } from 'node:net';

export function listenOn(server: Server, port = 0, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
