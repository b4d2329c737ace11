import {CreateBucketCommand} from '@aws-sdk/client-s3'

import {createS3Backend} from '../../src/backends/s3/index.js'
import {describeStorageCompliance} from '../compliance/storage.js'
import {s3SettingsFor, sharedRadosgw} from '../helpers/radosgw.js'
import {gatewayClient} from '../helpers/s3-client.js'

// One bucket per run; every compliance test works under it, so directories are prefixes.
const BUCKET = `compliance-${process.pid}-${Date.now().toString(36)}`
const BASE = `/${BUCKET}`

describeStorageCompliance(
  's3 (Ceph radosgw)',
  async () => {
    const gateway = await sharedRadosgw()
    const client = gatewayClient(gateway)
    await client.send(new CreateBucketCommand({Bucket: BUCKET}))
    client.destroy()
    const adapter = await createS3Backend(s3SettingsFor(gateway))
    return {adapter, teardown: () => adapter.remove(BASE, {recursive: true})}
  },
  {baseDir: BASE, implicitParents: true, without: ['about']},
)
