from tests.support.se import StorageElementUnderTest, sha256_hex


def test_round_trip(rw_se: StorageElementUnderTest) -> None:
    with rw_se.client() as c:
        data = b"hello world" * 100
        r = c.post(
            "/api/v1/files",
            content=data,
            params={"filename": "hello.txt"},
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 201, r.text
        meta = r.json()
        assert meta["checksum"] == f"sha256:{sha256_hex(data)}"
        d = c.get(f"/api/v1/files/{meta['file_id']}/download")
        assert d.status_code == 200
        assert d.content == data
        assert d.headers["etag"] == f'"{sha256_hex(data)}"'
