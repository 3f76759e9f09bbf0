/** The path of the current bundle of `entry` (repo-relative), rebuilt first when a file it was built from changed. */
export function hostBundle(name: string, entry: string): Promise<string>;
