import { type BlockList, isIP } from "node:net";

/** Throws on an entry that is neither an address nor a CIDR range, naming it. */
export function addToBlockList(list: BlockList, entry: string): void {
  const [address, bits] = entry.split("/");
  const family = isIP(address ?? "");
  if (family === 0) throw new Error(`not an IP address or CIDR range: ${entry}`);
  const type = family === 6 ? "ipv6" : "ipv4";
  if (bits === undefined) return list.addAddress(address as string, type);
  const prefix = Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32)) {
    throw new Error(`not a CIDR range: ${entry}`);
  }
  list.addSubnet(address as string, prefix, type);
}
