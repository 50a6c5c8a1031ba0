// Which stack a resource belongs to, as the director's ownership ledger records it (provider/helper/PROTOCOL.md).
import * as pulumi from "@pulumi/pulumi";

/** "organization/project/stack" of the running program: passed to the provider as every managing resource's `owner`. */
export function stackOwner(): string {
  return `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`;
}
