import {expect} from 'chai'

import {objectTarget, signRequest} from '../../../src/backends/s3/sigv4.js'

describe('s3 SigV4 signing for requests outside the SDK', () => {
  const access = {region: 'us-east-1', forcePathStyle: false, accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'}

  it("signs AWS's documented example (GET Object with a Range) to its published signature", () => {
    const target = objectTarget({...access, endpoint: 'https://s3.amazonaws.com'}, 'examplebucket', 'test.txt')
    expect(target).to.deep.include({secure: true, hostname: 'examplebucket.s3.amazonaws.com', port: 443, path: '/test.txt'})
    const empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    const headers = signRequest(access, 'GET', target, {range: 'bytes=0-9'}, new Date('2013-05-24T00:00:00Z'), empty)
    expect(headers.authorization).to.equal(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    )
  })

  it('addresses path style on an endpoint, encoding every key segment as SigV4 wants', () => {
    const target = objectTarget({...access, forcePathStyle: true, endpoint: 'http://127.0.0.1:7480'}, 'b', "dir/a b+c(1)!*'ж.txt")
    expect(target).to.deep.equal({secure: false, hostname: '127.0.0.1', port: 7480, host: '127.0.0.1:7480', path: '/b/dir/a%20b%2Bc%281%29%21%2A%27%D0%B6.txt'})
  })
})
