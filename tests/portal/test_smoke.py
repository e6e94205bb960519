def test_start_page_renders_in_german_by_default(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "Willkommen" in response.get_data(as_text=True) or "Welcome" in response.get_data(as_text=True)
