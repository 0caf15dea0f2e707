/** Named ext4 volumes and the attach locks of every disk a sandbox uses. */
export { checkVolumeName, volumePath, volumesDir } from "./names.js";
export {
  DEFAULT_VOLUME_SIZE_MB,
  ErrVolumeNotFound,
  MAX_VOLUME_SIZE_MB,
  createVolume,
  listVolumes,
  removeVolume,
  requireVolume,
  type VolumeInfo,
} from "./store.js";
export {
  ErrVolumeInUse,
  diskHolders,
  lockDisk,
  type DiskHolder,
  type DiskLock,
} from "./disk-lock.js";
